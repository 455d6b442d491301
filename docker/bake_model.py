"""Bake one registered model version into an embedded MLflow store (build stage `model` of docker/Dockerfile).

    python bake_model.py --source <tracking URI> --ref <version|alias> --dest /var/lib/credit-score/models

The version is loaded from the source registry with its sha256 check (a tampered or incomplete bundle stops
the build), then registered in a fresh SQLite store under ``--dest`` with the same lineage tags plus
``baked_from_uri`` / ``baked_from_version``, and made ``champion`` there. The image's default settings point
at that store, so the container serves it without any registry; MLFLOW_TRACKING_URI at run time still wins.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.bundle import BundleError
from app.config import Settings
from app.registry import CHAMPION, Registry, RegistryError


def bake(source: str, ref: str, name: str, dest: Path) -> str:
    src = Registry(Settings(mlflow_tracking_uri=source, model_name=name))
    info, _ = src.load(ref)  # verifies artifact_sha256 before anything is copied
    bundle_dir = src.bundle_path(info.version)

    dest.mkdir(parents=True, exist_ok=True)
    dst = Registry(Settings(models_dir=dest, model_name=name))
    run = dst.client.create_run(dst.experiment_id(), run_name=f"baked-{name}-v{info.version}")
    tags = dict(info.tags)
    tags.update(baked_from_uri=_redact(source), baked_from_version=info.version)
    version = dst.register(bundle_dir, run.info.run_id, tags)
    dst.client.set_terminated(run.info.run_id)
    dst.promote(version, CHAMPION, force=True)
    dst.load(CHAMPION)  # the embedded copy verifies too
    return version


def _redact(uri: str) -> str:
    """Drop credentials from a URI before it becomes a tag (https://user:pass@host -> https://host)."""
    scheme, sep, rest = uri.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        rest = rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", required=True, help="tracking URI of the registry holding the version")
    p.add_argument("--ref", required=True, help="version number or alias (champion, challenger)")
    p.add_argument("--name", default="credit-score", help="registered model name")
    p.add_argument("--dest", type=Path, required=True, help="directory of the embedded store")
    a = p.parse_args(argv)
    if not a.source:
        p.error("--source (build arg MODEL_SOURCE_URI) is required with MODEL_REF")
    try:
        version = bake(a.source, a.ref, a.name, a.dest)
    except (RegistryError, BundleError) as e:
        print(f"bake: {e}", file=sys.stderr)
        return 1
    print(f"baked {a.name} {a.ref} from {_redact(a.source)} as champion version {version} in {a.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
