"""Fixtures for the Ansible tests: the tools, the project's wheel, and a runner for ansible-playbook."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from app.config import PROJECT_ROOT
from tests.tools import which

ANSIBLE_DIR = PROJECT_ROOT / "ansible"
PLAYBOOKS = ("site.yml", "deploy.yml", "rollback.yml")
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)\s+"
                   r"rescued=(\d+)\s+ignored=(\d+)", re.M)


def tool(name: str, *extra: str) -> str:
    path = which(name) or next((p for p in extra if os.access(p, os.X_OK)), None)
    if path is None:
        pytest.skip(f"{name} is not installed (pip install -r requirements-dev.txt; Debian: see .ci/run)")
    return path


def ansible_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "CREDIT_SCORE_", "MLFLOW_"))}
    env.update(ANSIBLE_CONFIG=str(ANSIBLE_DIR / "ansible.cfg"), ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-local"),
               ANSIBLE_REMOTE_TEMP=str(tmp / "ansible-remote"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]))
    return env


@dataclass
class Run:
    rc: int
    out: str
    seconds: float

    def recap(self, host: str = "localhost") -> dict[str, int]:
        rows = [m for m in RECAP.finditer(self.out) if m.group(1) == host]
        assert rows, f"no PLAY RECAP for {host}:\n{self.out[-3000:]}"
        keys = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")
        return {k: sum(int(m.group(i + 2)) for m in rows) for i, k in enumerate(keys)}


class Ansible:
    """ansible-playbook from ansible/ with its ansible.cfg, the local inventory and a vars file."""

    def __init__(self, tmp: Path):
        self.playbook_bin = tool("ansible-playbook")
        self.tmp = tmp
        self.env = ansible_env(tmp)

    def run(self, playbook: str, extra_vars: dict, on_line=None, timeout: float = 600,
            extra_args: list[str] | None = None) -> Run:
        import time

        vars_file = self.tmp / f"vars-{len(list(self.tmp.glob('vars-*.yml')))}.yml"
        vars_file.write_text(yaml.safe_dump(extra_vars))
        cmd = [self.playbook_bin, "-i", "inventories/local", playbook, "-e", f"@{vars_file}", *(extra_args or [])]
        t0 = time.monotonic()
        # its own process group: a playbook stopped early takes its forked workers with it (the services it
        # starts daemonise into sessions of their own and are stopped by the fixtures that own them)
        proc = subprocess.Popen(cmd, cwd=ANSIBLE_DIR, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        lines = []
        try:
            for line in proc.stdout:
                lines.append(line)
                if on_line is not None:
                    on_line(line)
                if time.monotonic() - t0 > timeout:
                    raise AssertionError(f"{playbook} took more than {timeout} s:\n{''.join(lines)[-3000:]}")
            rc = proc.wait(30)
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
        out = "".join(lines)
        (self.tmp / f"{playbook}-{len(list(self.tmp.glob('*.log')))}.log").write_text(out)
        return Run(rc, out, time.monotonic() - t0)


@pytest.fixture(scope="session")
def project_wheel(tmp_path_factory) -> Path:
    """The project's wheel, built from a copy of the sources (nothing is written into the repository)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("setup.py", "requirements.txt", "requirements-dev.txt", "README.md"):
        shutil.copy2(PROJECT_ROOT / name, src / name)
    shutil.copytree(PROJECT_ROOT / "app", src / "app", ignore=shutil.ignore_patterns("__pycache__"))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp / "dist"),
                          str(src)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("credit_score_mlops-*.whl")
    return wheel


def site_packages() -> str:
    """This interpreter's site-packages: the release virtualenvs of the tests import their dependencies from
    here (PYTHONPATH) instead of downloading ~600 MB per release; the package itself is installed for real."""
    return sysconfig.get_paths()["purelib"]
