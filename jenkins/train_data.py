#!/usr/bin/env python3
"""The data the CI training targets (``make train-ci``, ``make train-check``) train on, and the record of it.

``check --synthetic 0|1``: ``CREDIT_SCORE_DATA`` names the training data (a path or any fsspec URL; Jenkins binds it
from the ``training-data-source`` credential, or from the ``TRAIN_DATA`` build parameter), or ``--synthetic 1``
(``make ... TRAIN_SYNTHETIC=1``) asks for the embedded synthetic set. Neither is an error (exit 2), never a silent
fallback to synthetic data; both is an error too (which one was meant?).

``record TRAIN_JSON --synthetic 0|1``: prints one JSON object for ``reports/train-data.json`` (archived with the
build): the source as configured with any credentials and query values removed, whether synthetic data was
asked for, the sha256 and size of a local data file, and the train summary's own ``data`` section (its sources,
rows per source) when it has one. The source is never printed with its credentials.

Standard library only: it runs before and after training, with the project's interpreter.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

EXIT_USAGE = 2
VAR = "CREDIT_SCORE_DATA"


def redact(source: str) -> str:
    """``source`` without a password or user in its URL and without query values (signed URLs, tokens)."""
    parts = urlsplit(source)
    if not parts.scheme or len(parts.scheme) == 1:  # a local path (or a Windows drive letter)
        return source
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = urlencode([(k, "***") for k, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def configured() -> str:
    return os.environ.get(VAR, "").strip()


def check(synthetic: bool) -> int:
    source = configured()
    if synthetic and source:
        print(f"train: both {VAR} and TRAIN_SYNTHETIC=1 are set: train on the configured data (unset "
              "TRAIN_SYNTHETIC) or on the synthetic set (unset the data source), not both", file=sys.stderr)
        return EXIT_USAGE
    if not synthetic and not source:
        print(f"train: no training data configured: set {VAR} to the data's path or URL (Jenkins: the "
              "training-data-source credential or the TRAIN_DATA parameter), or ask for the embedded synthetic "
              "set with TRAIN_SYNTHETIC=1 (Jenkins: TRAIN_ON_SYNTHETIC); nothing was trained", file=sys.stderr)
        return EXIT_USAGE
    print(f"train: data {'the embedded synthetic set (TRAIN_SYNTHETIC=1)' if synthetic else redact(source)}")
    return 0


def record(train_json: Path, synthetic: bool) -> dict:
    source = configured()
    out: dict = {"synthetic": synthetic, "variable": None if synthetic else VAR,
                 "source": "embedded synthetic data set" if synthetic else redact(source)}
    if synthetic:
        out["rows"] = int(os.environ.get("CREDIT_SCORE_DEFAULT_DATA_ROWS") or 0) or None
    elif not urlsplit(source).scheme or len(urlsplit(source).scheme) == 1:
        path = Path(source)
        if path.is_file():
            digest = hashlib.sha256()
            with path.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            out.update(sha256=digest.hexdigest(), bytes=path.stat().st_size)
    try:
        summary = json.loads(train_json.read_text() or "{}")
    except (OSError, ValueError):
        summary = {}
    if isinstance(summary, dict):
        out["version"] = summary.get("version")
        if summary.get("data") is not None:
            out["data"] = summary["data"]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="train_data.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("check", "record"):
        s = sub.add_parser(name)
        s.add_argument("--synthetic", default="0", help="1 or true: the embedded synthetic set was asked for")
        if name == "record":
            s.add_argument("train_json", type=Path, help="the train summary (reports/train.json)")
    args = p.parse_args(argv)
    if args.synthetic.lower() not in ("0", "1", "true", "false", ""):
        print(f"train: TRAIN_SYNTHETIC must be 1 or 0, not {args.synthetic!r}", file=sys.stderr)
        return EXIT_USAGE
    synthetic = args.synthetic.lower() in ("1", "true")
    if args.command == "check":
        return check(synthetic)
    print(json.dumps(record(args.train_json, synthetic), indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
