#!/usr/bin/env bash
# Prepare docker/wheelhouse/ (git-ignored except its README) so the images build without network:
#   docker/scripts/wheelhouse.sh serve      wheels for docker/requirements-serve.txt (serving image)
#   docker/scripts/wheelhouse.sh train      wheels for requirements.txt (training image)
#   docker/scripts/wheelhouse.sh all        both (default)
# Then: podman build --network=none --build-arg PIP_NO_INDEX=1 ... (see docker/README.md).
# The wheels must match the image's Python: by default the interpreter running this script (PYTHON, default
# python3) must be CPython 3.11 on x86_64/aarch64 Linux like the image; otherwise set WHEEL_PLATFORM_ARGS, e.g.
#   WHEEL_PLATFORM_ARGS="--python-version 3.11 --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64"
# (binary wheels only in that case).
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
dest="${WHEELHOUSE:-$repo/docker/wheelhouse}"
python="${PYTHON:-python3}"
which="${1:-all}"
reqs=()
case "$which" in
  serve) reqs=(-r "$repo/docker/requirements-serve.txt") ;;
  train) reqs=(-r "$repo/requirements.txt") ;;
  all) reqs=(-r "$repo/docker/requirements-serve.txt" -r "$repo/requirements.txt") ;;
  *) echo "usage: $0 serve|train|all" >&2; exit 2 ;;
esac
# the build tools the Dockerfiles install first (the project wheel is built with --no-build-isolation)
tools=(pip "setuptools>=68" wheel)

mkdir -p "$dest"
if [[ -n "${WHEEL_PLATFORM_ARGS:-}" ]]; then
  # shellcheck disable=SC2086  # word splitting of the platform flags is intended
  "$python" -m pip download -q --only-binary=:all: $WHEEL_PLATFORM_ARGS --dest "$dest" "${tools[@]}"
  # shellcheck disable=SC2086
  "$python" -m pip download -q --only-binary=:all: $WHEEL_PLATFORM_ARGS --dest "$dest" "${reqs[@]}"
else
  "$python" - <<'PY'
import sys
if sys.version_info[:2] != (3, 11):
    sys.exit(f"wheelhouse: {sys.executable} is Python {sys.version.split()[0]}, the images use 3.11; "
             "set PYTHON or WHEEL_PLATFORM_ARGS")
PY
  "$python" -m pip wheel -q --wheel-dir "$dest" "${tools[@]}"
  "$python" -m pip wheel -q --wheel-dir "$dest" "${reqs[@]}"
fi
echo "wheelhouse $dest: $(find "$dest" -name '*.whl' | wc -l) wheels, $(du -sh "$dest" | cut -f1)"
