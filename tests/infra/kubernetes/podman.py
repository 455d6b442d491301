"""Running rendered manifests with `podman kube play` (runc), on 127.0.0.1 host ports only."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import yaml

from tests.tools import which


def podman_cmd() -> list[str] | None:
    exe = which("podman")
    return [exe, "--runtime", "runc"] if exe else None


def image_exists(image: str) -> bool:
    cmd = podman_cmd()
    return bool(cmd) and subprocess.run([*cmd, "image", "exists", image], capture_output=True,
                                        timeout=60).returncode == 0


@contextlib.contextmanager
def kube_play(docs: list[dict], workdir: Path) -> Iterator[dict[str, str]]:
    """Play `docs`; yields the environment for further podman calls; tears the pods down afterwards."""
    cmd = podman_cmd()
    assert cmd, "podman is not installed"
    play = workdir / "play.yaml"
    play.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    # runc here cannot raise the default nofile/nproc limits: lower them for these containers only
    conf = workdir / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]\n')
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    try:
        proc = subprocess.run([*cmd, "kube", "play", str(play)], capture_output=True, text=True, env=env,
                              timeout=300)
        assert proc.returncode == 0, f"podman kube play failed:\n{proc.stderr}"
        yield env
    finally:
        subprocess.run([*cmd, "kube", "down", str(play)], capture_output=True, text=True, env=env, timeout=120)


def logs(container: str) -> str:
    cmd = podman_cmd()
    proc = subprocess.run([*cmd, "logs", container], capture_output=True, text=True, timeout=60)
    return (proc.stdout + proc.stderr)[-4000:]
