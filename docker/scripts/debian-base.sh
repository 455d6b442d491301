#!/usr/bin/env bash
# Build a Debian bookworm base image with Python 3.11 without any container registry:
# debootstrap a minbase root filesystem (python3, python3-venv), pack it as a tarball under a git-ignored
# cache directory, and `podman import` it. The tarball is reused on later runs.
#
#   docker/scripts/debian-base.sh [IMAGE]            default IMAGE: localhost/debian-python3:bookworm
#
# Environment: CREDIT_SCORE_CACHE_DIR (default <repo>/.cache/containers), DEBIAN_MIRROR (default: the first
# bookworm mirror in /etc/apt/sources.list*, else http://deb.debian.org/debian), CONTAINER_ENGINE (podman).
# Needs root (debootstrap) and a reachable Debian mirror the first time only.
set -euo pipefail

image="${1:-localhost/debian-python3:bookworm}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${CREDIT_SCORE_CACHE_DIR:-$repo/.cache/containers}"
engine="${CONTAINER_ENGINE:-podman}"
suite=bookworm
packages=python3,python3-venv,ca-certificates
tarball="$cache/debian-$suite-python3.tar"

mirror="${DEBIAN_MIRROR:-}"
if [[ -z "$mirror" ]]; then
  # deb822 "URIs:" or one-line "deb URL suite" entries; skip the security archive
  mirror="$(grep -rhsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/ \
            | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ')" || true
  mirror="${mirror:-http://deb.debian.org/debian}"
fi

if "$engine" image exists "$image" 2>/dev/null; then
  echo "$image already present"
  exit 0
fi

mkdir -p "$cache"
if [[ ! -s "$tarball" ]]; then
  rootfs="$(mktemp -d "$cache/rootfs.XXXXXX")"
  trap 'rm -rf "$rootfs"' EXIT
  echo "debootstrap $suite from $mirror into $rootfs"
  debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror"
  # an image needs no package caches, lists or logs
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log \
         "$rootfs"/var/cache/debconf/*-old
  tar --numeric-owner -C "$rootfs" -cf "$tarball.part" .
  mv "$tarball.part" "$tarball"
fi

"$engine" import \
  --change 'CMD ["/bin/bash"]' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --message "debootstrap --variant=minbase --include=$packages $suite" \
  "$tarball" "$image"
echo "imported $image from $tarball"
