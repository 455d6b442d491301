"""The tampered-copy attack of issue 15, as test material: a skops file that runs a payload when used, and a
copy of a registered bundle with one skops file swapped for it and the manifest re-sealed to match.

The payload only writes a marker file: a test asserts the marker is absent (the payload never ran).
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import shutil
from pathlib import Path

from app.core.bundle import MANIFEST


def payload_source(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('payload ran')"


def write_exec_pipeline(path: Path, marker: Path) -> None:
    """A scikit-learn pipeline ending in ``builtins.exec``: ``transform(X)`` runs the payload, whatever X is.

    Step one turns any input into the payload's source (``max(src, X, key=callable)`` is ``src``: neither is
    callable, so the first wins); step two is ``FunctionTransformer(func=builtins.exec)``.
    """
    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    src = functools.partial(builtins.max, payload_source(marker), key=builtins.callable)
    pipe = Pipeline([("source", FunctionTransformer(func=src)), ("run", FunctionTransformer(func=builtins.exec))])
    sio.dump(pipe, path)


def reseal(bundle_dir: Path) -> str:
    """Rewrite the manifest to match the files now in ``bundle_dir``; returns the new artifact sha256."""
    names = [line.partition("  ")[2] for line in (bundle_dir / MANIFEST).read_text().splitlines()]
    manifest = "".join(f"{hashlib.sha256((bundle_dir / n).read_bytes()).hexdigest()}  {n}\n" for n in names)
    (bundle_dir / MANIFEST).write_bytes(manifest.encode("ascii"))
    return hashlib.sha256(manifest.encode("ascii")).hexdigest()


def tampered_copy(src: Path, dst: Path, marker: Path, swap: str = "features.skops") -> str:
    """Copy a bundle, swap ``swap`` for the exec pipeline, re-seal the manifest; returns the new sha256."""
    shutil.copytree(src, dst)
    write_exec_pipeline(dst / swap, marker)
    return reseal(dst)
