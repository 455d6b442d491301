"""deploy.yml and rollback.yml for real on this machine (connection local) into a temporary prefix.

One deployment is shared by the tests of this module, in order:
1. release 1.0.0 goes to the blue colour: the service answers through nginx; a second run reports changed=0;
2. release 1.1.0 (its configuration points at a store whose champion is model version 2) goes to green while a
   load generator sends >= 5,000 /predict requests through nginx: zero failures, and the answers move from
   model version 1 (blue, release 1.0.0) to version 2 (green, release 1.1.0); a re-run changes nothing;
3. rollback.yml under the same load: back to blue and version 1 with zero failures, green stopped after a drain;
   before traffic moves, the champion alias that release 1.1.0's promotion moved (store b: v1 -> v2, recorded
   as `make promote-production` records it) goes back to v1; a second rollback is a no-op;
4. release 1.2.0 with a broken setting (request bodies limited to 10 bytes: /ready passes, the smoke prediction
   gets 413) is refused: the playbook fails, traffic never leaves blue, green gets its previous release back.

What is real: ansible-playbook with the roles, a virtualenv per release with the project's wheel installed by
pip, supervisord (no systemd runs here) with one gunicorn per colour, nginx of its own with graceful reloads.
One shortcut: the release virtualenvs import third-party dependencies from this interpreter's site-packages
(PYTHONPATH through mlops_app_environment) and pip installs the wheel with --no-deps, because a full install is
~600 MB and minutes per release; production installs everything (mlops_app_pip_extra_args empty).
"""

from __future__ import annotations

import contextlib
import grp
import http.client
import json
import os
import pwd
import signal
import subprocess
import time
from pathlib import Path

import pytest

from app.config import Settings
from app.datasets import generate_synthetic
from app.registry import Registry
from app.registry_release import promote_for_release
from app.schema import DatasetSchema
from tests.conftest import SCHEMAS
from tests.helpers import fit_bundle, register_bundle
from tests.infra.ansible.conftest import Ansible, site_packages, tool
from tests.infra.ansible.load import Load
from tests.stores import seed_mlflow_store
from tests.tools import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MIN_REQUESTS = 5000
# the playbooks run this task on the new colour just before they switch nginx: the load starts here
BEFORE_SWITCH = "TASK [mlops_app : Send a smoke prediction to the colour"


def make_store(root: Path, versions: int, release: str | None = None) -> str:
    """An MLflow store with `versions` registered model versions; the last one is the champion (with `release`:
    promoted from the one before by that release's deploy in the local environment, and recorded so)."""
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):  # mlflow.set_tracking_uri leaves them set
        os.environ.pop(var, None)
    schema = DatasetSchema.load(SCHEMAS / "uci_credit.yaml")
    frame = generate_synthetic(2000, seed=7)
    seed_mlflow_store(root / "models" / "mlflow.db")
    settings = Settings(models_dir=root / "models", reports_dir=root / "reports")
    version = None
    for seed in range(versions):
        version = register_bundle(settings, fit_bundle(schema, frame, seed=seed), root)
    if release is None:
        Registry(settings).promote(version, "champion")
        return version
    reg = Registry(settings)
    reg.promote(str(int(version) - 1), "champion")
    reg.promote(version, "challenger")
    assert promote_for_release(reg, version, version, "local", [release]) == (True, str(int(version) - 1))
    return version


def get(port: int, path: str) -> tuple[int, dict, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(r.read() or b"{}")
    finally:
        conn.close()


class Deployment:
    def __init__(self, tmp: Path, wheel: Path):
        self.tmp = tmp
        self.prefix = tmp / "prefix"
        self.ansible = Ansible(tmp)
        self.nginx = tool("nginx", "/usr/sbin/nginx")
        self.supervisord = tool("supervisord", "/usr/bin/supervisord")
        self.supervisorctl = tool("supervisorctl", "/usr/bin/supervisorctl")
        self.port = free_port()
        self.ports = {"blue": free_port(), "green": free_port()}
        assert len({self.port, *self.ports.values()}) == 3
        self.stores = {"a": tmp / "store-a", "b": tmp / "store-b"}
        assert make_store(self.stores["a"], 1) == "1"
        assert make_store(self.stores["b"], 2, release="1.1.0") == "2"
        user = pwd.getpwuid(os.getuid()).pw_name
        self.base = {
            "mlops_app_prefix": str(self.prefix),
            "mlops_app_package": str(wheel),
            "mlops_app_pip_extra_args": "--no-deps --no-index",
            "mlops_app_user": user,
            "mlops_app_group": grp.getgrgid(os.getgid()).gr_name,
            "mlops_app_config_owner": user,
            "mlops_app_supervisord_path": self.supervisord,
            "mlops_app_supervisorctl_path": self.supervisorctl,
            "mlops_app_nginx_binary": self.nginx,
            "mlops_app_nginx_port": self.port,
            "mlops_app_ports": self.ports,
            "mlops_app_reload_interval": 2,
            "mlops_app_drain_seconds": 1,
            "mlops_app_ready_timeout": 90,
            "mlops_app_environment": {"PYTHONPATH": site_packages()},
        }

    def vars(self, version: str, store: str, **over) -> dict:
        return {**self.base, "mlops_app_version": version,
                "mlops_app_models_dir": str(self.stores[store] / "models"), **over}

    def deploy(self, version: str, store: str, on_line=None, **over):
        return self.ansible.run("deploy.yml", self.vars(version, store, **over), on_line)

    def rollback(self, on_line=None, **over):
        # the registry of the release being rolled back (1.1.0 uses store b); on a host every release shares one
        registry = {"CREDIT_SCORE_MODELS_DIR": str(self.stores["b"] / "models")}
        return self.ansible.run("rollback.yml", {**self.base, "mlops_app_registry_environment": registry, **over},
                                on_line)

    def champion(self, store: str) -> str | None:
        for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):  # left by an earlier mlflow.set_tracking_uri
            os.environ.pop(var, None)
        settings = Settings(models_dir=self.stores[store] / "models", reports_dir=self.stores[store] / "reports")
        return Registry(settings).alias_version("champion")

    def ctl(self, *args: str) -> str:
        conf = self.prefix / "supervisor" / "supervisord.conf"
        return subprocess.run([self.supervisorctl, "-c", str(conf), *args], capture_output=True, text=True,
                              timeout=120).stdout

    def active(self) -> str:
        return (self.prefix / "state" / "active-colour").read_text().strip()

    def stop(self):
        """supervisord stops both colours gracefully, nginx quits; whatever still runs after 40 s is killed."""
        conf = self.prefix / "supervisor" / "supervisord.conf"
        if conf.exists():
            self.ctl("shutdown")
        nginx_pid = self.prefix / "nginx" / "run" / "nginx.pid"
        if nginx_pid.exists():
            subprocess.run([self.nginx, "-p", f"{self.prefix}/nginx/", "-c", f"{self.prefix}/nginx/conf/nginx.conf",
                            "-e", f"{self.prefix}/nginx/logs/error.log", "-s", "quit"], capture_output=True, timeout=30)
        for pid_file in (self.prefix / "supervisor" / "supervisord.pid", nginx_pid):
            deadline = time.monotonic() + 40
            while pid_file.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            if pid_file.exists():
                with contextlib.suppress(ValueError, ProcessLookupError):
                    os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, project_wheel):
    d = Deployment(tmp_path_factory.mktemp("ansible-deploy"), project_wheel)
    yield d
    d.stop()


def under_load(deployment: Deployment, action, start_on: str | None = BEFORE_SWITCH, min_requests: int = MIN_REQUESTS,
               threads: int = 4) -> tuple[Load, object]:
    """Run action(on_line) while the load generator sends requests through nginx; the load starts when the
    playbook prints `start_on` (None: before it starts) and ends after the playbook, once min_requests were sent
    (bounded: 120 s)."""
    load = Load(deployment.port, threads=threads, min_requests=min_requests, max_seconds=120)

    def on_line(line: str):
        if start_on is not None and start_on in line and not load.started:
            load.start()
            load.wait_for(20)

    if start_on is None:
        load.start()
        load.wait_for(20)
    try:
        run = action(on_line)
    finally:
        if not load.started:
            load.start()
        time.sleep(1.0)
        load.stop()
    return load, run


def summary(load: Load) -> str:
    by = {}
    for r in load.results:
        by[(r.status, r.version, r.colour, r.release)] = by.get((r.status, r.version, r.colour, r.release), 0) + 1
    return f"{len(load.results)} requests: {by}"


def test_first_deploy_answers_through_nginx_and_second_run_changes_nothing(deployment):
    d = deployment
    run = d.deploy("1.0.0", "a")
    assert run.rc == 0, run.out[-4000:]
    assert run.recap()["failed"] == 0
    status, headers, body = get(d.port, "/ready")
    assert status == 200 and body["model"]["version"] == "1", (status, body)
    assert headers["x-credit-score-colour"] == "blue" and headers["x-credit-score-release"] == "1.0.0"
    assert d.active() == "blue"
    # the release is a real virtualenv with the package installed by pip, and the service runs from it
    release = d.prefix / "releases" / "1.0.0"
    assert (release / ".installed").exists()
    found = subprocess.run([str(release / "venv" / "bin" / "python"), "-c", "import app; print(app.__file__)"],
                           capture_output=True, text=True, env={"PYTHONPATH": site_packages()}, timeout=60,
                           cwd=d.prefix / "colours" / "blue")  # where ./run starts gunicorn
    assert found.stdout.strip().startswith(str(release / "venv")), found
    assert (d.prefix / "colours" / "blue" / "release").resolve() == release
    assert "credit-score-blue" in d.ctl("status") and "RUNNING" in d.ctl("status", "credit-score-blue")
    print(f"first deploy: {run.seconds:.1f} s, recap {run.recap()}")

    again = d.deploy("1.0.0", "a")
    assert again.rc == 0, again.out[-4000:]
    recap = again.recap()
    assert recap["changed"] == 0 and recap["failed"] == 0, (recap, again.out[-4000:])
    print(f"second run: {again.seconds:.1f} s, recap {recap}")


def test_blue_green_deploy_under_load_has_zero_failed_requests(deployment):
    d = deployment
    assert d.active() == "blue"
    load, run = under_load(d, lambda on_line: d.deploy("1.1.0", "b", on_line))
    assert run.rc == 0, run.out[-4000:]
    assert len(load.results) >= MIN_REQUESTS, summary(load)
    assert not load.failures, (load.failures[:5], summary(load))
    first, last = load.results[:20], load.results[-200:]
    assert {(r.version, r.colour, r.release) for r in first} == {("1", "blue", "1.0.0")}, summary(load)
    assert {(r.version, r.colour, r.release) for r in last} == {("2", "green", "1.1.0")}, summary(load)
    assert d.active() == "green"
    # the old colour keeps running for an instant rollback
    assert "RUNNING" in d.ctl("status", "credit-score-blue")
    print(f"blue-green deploy: {run.seconds:.1f} s; {summary(load)}")

    again = d.deploy("1.1.0", "b")
    assert again.rc == 0 and again.recap()["changed"] == 0, (again.recap(), again.out[-4000:])


def test_rollback_under_load_has_zero_failed_requests(deployment):
    d = deployment
    assert d.active() == "green" and d.champion("b") == "2"
    # this time the old colour is stopped after the drain (mlops_app_drain_seconds: 1)
    load, run = under_load(d, lambda on_line: d.rollback(on_line, mlops_app_stop_old_colour=True))
    assert run.rc == 0, run.out[-4000:]
    # the model first: the champion release 1.1.0's promotion replaced, before the previous colour is checked
    assert d.champion("b") == "1"
    assert "model: champion: v2 -> v1 (rolling back release 1.1.0 in local)" in run.out, run.out[-4000:]
    assert run.out.index("Restore the champion replaced by the deploy of release 1.1.0") < run.out.index(BEFORE_SWITCH)
    assert len(load.results) >= MIN_REQUESTS, summary(load)
    assert not load.failures, (load.failures[:5], summary(load))
    first, last = load.results[:20], load.results[-200:]
    # green hot-reloads the restored champion (store b's v1) while it still has the traffic
    assert {r.colour for r in first} == {"green"} and {r.version for r in first} <= {"1", "2"}, summary(load)
    assert {(r.version, r.colour, r.release) for r in last} == {("1", "blue", "1.0.0")}, summary(load)
    assert d.active() == "blue"
    assert "STOPPED" in d.ctl("status", "credit-score-green")
    print(f"rollback: {run.seconds:.1f} s; {summary(load)}")

    again = d.rollback()
    assert again.rc == 0 and again.recap()["changed"] == 0, (again.recap(), again.out[-4000:])
    assert "already rolled back" in again.out and d.active() == "blue"


def test_failed_smoke_test_aborts_the_switch(deployment):
    d = deployment
    assert d.active() == "blue"
    broken = {"PYTHONPATH": site_packages(), "CREDIT_SCORE_MAX_BODY_BYTES": "10"}
    load, run = under_load(d, lambda on_line: d.deploy("1.2.0", "b", on_line, mlops_app_environment=broken),
                           min_requests=1000, threads=2)
    assert run.rc != 0, run.out[-4000:]
    assert run.recap()["rescued"] == 1
    assert "failed in 'Send a smoke prediction to the colour green'" in run.out, run.out[-4000:]
    assert "Status code was 413" in run.out and "Traffic stays on the blue colour (release 1.0.0)" in run.out
    # traffic never left blue, and nothing failed meanwhile
    assert load.results and not load.failures, (load.failures[:5], summary(load))
    assert {(r.version, r.colour) for r in load.results} == {("1", "blue")}, summary(load)
    assert d.active() == "blue"
    status, headers, body = get(d.port, "/ready")
    assert status == 200 and headers["x-credit-score-colour"] == "blue" and body["model"]["version"] == "1"
    # the broken colour is stopped and has its previous release and settings back (rollback target intact)
    green = d.prefix / "colours" / "green"
    assert (green / "release").resolve() == d.prefix / "releases" / "1.1.0"
    assert "CREDIT_SCORE_MAX_BODY_BYTES" not in (green / "credit-score.env").read_text()
    assert "STOPPED" in d.ctl("status", "credit-score-green")
    print(f"refused deploy: {run.seconds:.1f} s; {summary(load)}")
