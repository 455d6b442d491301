"""Real container builds and runs with podman (Debian podman + runc), without any image registry.

The base image is a Debian bookworm root fs made with debootstrap (docker/scripts/debian-base.sh, cached under
the git-ignored .cache/containers/) and imported as localhost/debian-python3:bookworm; the Python wheels come
from docker/wheelhouse/ (docker/scripts/wheelhouse.sh); builds run with --network=none and PIP_NO_INDEX=1, so
they prove the air-gapped path. crun does not work on this machine: every podman call here uses runc and lower
nofile/nproc limits through a CONTAINERS_CONF file of the test session.

Tests skip, with the reason, only when podman cannot run containers here or the base image cannot be made
(no root for debootstrap and nothing cached). Figures (image sizes, build times) go to reports/infra/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from tests.tools import which

BASE_IMAGE = os.environ.get("CREDIT_SCORE_TEST_BASE_IMAGE", "localhost/debian-python3:bookworm")
SERVE_IMAGE = "localhost/credit-score:test"
TRAIN_IMAGE = "localhost/credit-score-train:test"
SCRIPTS = PROJECT_ROOT / "docker" / "scripts"
FIGURES = PROJECT_ROOT / "reports" / "infra" / "containers.json"
MAX_SERVE_IMAGE_MB = 900


@dataclass
class Podman:
    exe: str
    env: dict[str, str]
    figures: dict = field(default_factory=dict)

    def run(self, *args: str, timeout: float = 600, check: bool = True, **kw) -> subprocess.CompletedProcess:
        proc = subprocess.run([self.exe, *args], env=self.env, capture_output=True, text=True, timeout=timeout, **kw)
        if check and proc.returncode != 0:
            raise AssertionError(f"podman {' '.join(args[:4])} ... exited {proc.returncode}:\n"
                                 f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc

    def image_exists(self, ref: str) -> bool:
        return self.run("image", "exists", ref, check=False, timeout=60).returncode == 0

    def inspect(self, ref: str, kind: str = "image") -> dict:
        return json.loads(self.run(kind, "inspect", ref, timeout=60).stdout)[0]

    def record(self, **figures) -> None:
        self.figures.update(figures)
        FIGURES.parent.mkdir(parents=True, exist_ok=True)
        old = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
        FIGURES.write_text(json.dumps({**old, **figures}, indent=2, sort_keys=True))

    def build(self, dockerfile: str, tag: str, *build_args: str, volumes: tuple[str, ...] = ()) -> float:
        """An air-gapped build from the repository root; returns the wall time in seconds."""
        args = ["build", "--format", "docker", "--network=none", "-f", dockerfile, "-t", tag,
                "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "--build-arg", "PIP_NO_INDEX=1"]
        for b in build_args:
            args += ["--build-arg", b]
        for v in volumes:
            args += ["-v", v]
        t0 = time.monotonic()
        self.run(*args, str(PROJECT_ROOT), timeout=1800)
        return time.monotonic() - t0


@pytest.fixture(scope="session")
def podman(tmp_path_factory) -> Podman:
    exe = which("podman")
    if exe is None:
        pytest.skip("podman is not installed (Debian packages podman runc)")
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    # crun fails on this machine; runc cannot raise the default nofile/nproc limits here
    conf.write_text('[containers]\ndefault_ulimits = ["nofile=4096:4096", "nproc=2048:2048"]\n'
                    '[engine]\nruntime = "runc"\n')
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    p = Podman(exe, env)
    info = p.run("info", "--format", "{{.Host.OCIRuntime.Name}}", check=False, timeout=120)
    if info.returncode != 0:
        pytest.skip(f"podman cannot run here: {info.stderr.strip()[-500:]}")
    return p


@pytest.fixture(scope="session")
def base_image(podman) -> str:
    """localhost/debian-python3:bookworm, debootstrapped once and cached (docker/scripts/debian-base.sh)."""
    if podman.image_exists(BASE_IMAGE):
        return BASE_IMAGE
    cache = Path(os.environ.get("CREDIT_SCORE_CACHE_DIR", PROJECT_ROOT / ".cache" / "containers"))
    if os.geteuid() != 0 and not (cache / "debian-bookworm-python3.tar").exists():
        pytest.skip("the Debian base image needs debootstrap as root once (or a cached root fs tarball)")
    if which("debootstrap") is None and not (cache / "debian-bookworm-python3.tar").exists():
        pytest.skip("debootstrap is not installed (Debian package debootstrap) and no base tarball is cached")
    proc = subprocess.run([str(SCRIPTS / "debian-base.sh"), BASE_IMAGE], env=podman.env, capture_output=True,
                          text=True, timeout=1800)
    assert proc.returncode == 0, f"debian-base.sh failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return BASE_IMAGE


def _wheelhouse(which_set: str) -> None:
    proc = subprocess.run([str(SCRIPTS / "wheelhouse.sh"), which_set], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, f"wheelhouse.sh {which_set} failed:\n{proc.stderr[-3000:]}"


@pytest.fixture(scope="session")
def serve_image(podman, base_image) -> str:
    """The serving image, built air-gapped from the wheelhouse (layers cached between runs)."""
    _wheelhouse("serve")
    seconds = podman.build("docker/Dockerfile", SERVE_IMAGE, "REVISION=test", "VERSION=0.1.0")
    size = podman.inspect(SERVE_IMAGE)["Size"]
    podman.record(serve_image=SERVE_IMAGE, serve_build_seconds=round(seconds, 1),
                  serve_image_mb=round(size / 1e6, 1))
    return SERVE_IMAGE


@pytest.fixture(scope="session")
def train_image(podman, base_image) -> str:
    _wheelhouse("train")
    seconds = podman.build("docker/Dockerfile.train", TRAIN_IMAGE, "REVISION=test", "VERSION=0.1.0")
    size = podman.inspect(TRAIN_IMAGE)["Size"]
    podman.record(train_image=TRAIN_IMAGE, train_build_seconds=round(seconds, 1),
                  train_image_mb=round(size / 1e6, 1))
    return TRAIN_IMAGE


@pytest.fixture(scope="session")
def serve_command_ready() -> None:
    """The container test needs `credit-score serve` (the serving issue); skip clearly until it exists."""
    exe = which("credit-score")
    cmd = [exe] if exe else ["python", "-m", "app.cli"]
    proc = subprocess.run([*cmd, "serve", "--help"], capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)
    if proc.returncode != 0:
        pytest.skip(f"`credit-score serve` is not available yet: {proc.stderr.strip()[-300:]}")


def give_to_app_user(path: Path) -> None:
    """Make a host directory the container user's (uid/gid 10001), as a volume would be."""
    if os.geteuid() == 0:
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                os.chown(os.path.join(root, name), 10001, 10001)
        os.chown(path, 10001, 10001)
    else:
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                os.chmod(os.path.join(root, name), 0o777 if name in dirs else 0o666)  # noqa: S103 (test dir)
        path.chmod(0o777)  # noqa: S103


def container_logs(podman: Podman, name: str) -> str:
    proc = podman.run("logs", name, check=False, timeout=60)
    return (proc.stdout + proc.stderr)[-4000:]


def smoke(url: str, timeout: float = 180, expect_version: str | None = None) -> subprocess.CompletedProcess:
    args = [sys.executable, str(SCRIPTS / "smoke.py"), "--url", url, "--timeout", str(timeout)]
    if expect_version:
        args += ["--expect-version", expect_version]
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout + 60)
