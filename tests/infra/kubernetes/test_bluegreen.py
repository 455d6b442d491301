"""Unit tests of kubernetes/scripts/bluegreen.py with kubectl replaced by a recording stub.

The stub (written per test) appends every argv it gets to a log, keeps the cluster's state (Service selectors,
images) in a JSON file, and fails where the scenario says: a rollout that times out, a colour whose pods answer
/ready with 503 or /predict with 500, a selector patch the API server refuses. For `port-forward` it serves
HTTP on the requested 127.0.0.1 port, answering as the colour the forwarded Service selects at that moment.

These prove the script's logic and the order of its kubectl commands, not its behaviour against a cluster.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.infra.kubernetes.conftest import K8S
from tests.tools import free_port

SCRIPT = K8S / "scripts" / "bluegreen.py"
NS = ["--namespace", "credit-score"]
COLOR = "jsonpath={.spec.selector.color}"
IMAGE = 'jsonpath={.spec.template.spec.containers[?(@.name=="credit-score")].image}'
OLD, NEW = "registry.example.com/credit-score:1.0.0", "registry.example.com/credit-score:1.1.0"


def bluegreen():
    spec = importlib.util.spec_from_file_location("bluegreen", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


STUB = r'''
import http.server, json, os, signal, sys

state_path, log_path = os.environ["STUB_STATE"], os.environ["STUB_LOG"]
args = sys.argv[1:]
with open(log_path, "a") as f:
    f.write(json.dumps(args) + "\n")
with open(state_path) as f:
    state = json.load(f)

def save():
    with open(state_path + ".tmp", "w") as f:
        json.dump(state, f)
    os.replace(state_path + ".tmp", state_path)

def die(msg, code=1):
    sys.stderr.write(msg + "\n")
    sys.exit(code)

rest = list(args)
for flag in ("--namespace", "--context"):
    if flag in rest:
        i = rest.index(flag)
        del rest[i:i + 2]
verb = rest[0]

if verb == "get":
    kind, name = rest[1], rest[2]
    if kind == "service":
        if name in state.get("unreadable", []):
            die(f'Error from server (NotFound): services "{name}" not found')
        print(state["selectors"][name], end="")
    elif kind == "deployment":
        print(state["images"][name.removeprefix("credit-score-")], end="")
elif verb == "set":
    target, assignment = rest[2], rest[3]
    kind, name = target.split("/")
    image = assignment.split("=", 1)[1]
    if kind == "deployment":
        state["images"][name.removeprefix("credit-score-")] = image
    else:
        state["monitor"] = image
    save()
    print(f"{target} image updated")
elif verb == "rollout":
    colour = rest[2].removeprefix("deployment/credit-score-")
    if colour in state.get("rollout_timeout", []):
        die("error: timed out waiting for the condition")
    print(f'deployment "credit-score-{colour}" successfully rolled out')
elif verb == "wait":
    colour = rest[2].removeprefix("deployment/credit-score-")
    if colour in state.get("unavailable", []):
        die("error: timed out waiting for the condition on deployments/credit-score-" + colour)
    print(f"deployment.apps/credit-score-{colour} condition met")
elif verb == "patch":
    name, patch = rest[2], json.loads(rest[5])
    if name in state.get("refuse_patch", []):
        die(f'Error from server (Forbidden): services "{name}" is forbidden: User cannot patch resource')
    state["selectors"][name] = patch["spec"]["selector"]["color"]
    state.setdefault("history", []).append([name, state["selectors"][name]])
    save()
    print(f"service/{name} patched")
elif verb == "port-forward":
    service = rest[3].removeprefix("service/")
    port = int(rest[4].split(":")[0])
    colour = state["selectors"][service]
    behaviour = state.get("health", {}).get(colour, "ok")
    if behaviour == "broken_when_live" and service == "credit-score":
        behaviour = "not_ready"

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def answer(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/ready":
                if behaviour == "not_ready":
                    return self.answer(503, {"status": "not ready", "colour": colour})
                return self.answer(200, {"status": "ready", "colour": colour})
            self.answer(404, {})

        def do_POST(self):
            n = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(n))
            if self.path != "/predict" or behaviour == "bad_predict" or "limit_bal" not in body:
                return self.answer(500, {"error": "internal error"})
            self.answer(200, {"prediction": "good", "probability": 0.1,
                              "model": {"name": "credit-score", "version": "3"}})

    if behaviour == "port_forward_fails":
        die(f'error: unable to forward port because pod is not running. Current status=Pending')
    server = http.server.HTTPServer(("127.0.0.1", port), Handler)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    print(f"Forwarding from 127.0.0.1:{port} -> 8000", flush=True)
    server.serve_forever()
else:
    die(f"stub: unexpected kubectl call {args}", 99)
'''


class Cluster:
    """The stub's state and command log, as the test sees them."""

    def __init__(self, tmp: Path, **state):
        self.dir = tmp
        self.state_path = tmp / "state.json"
        self.log_path = tmp / "kubectl.log"
        self.stub = tmp / "kubectl"
        self.stub.write_text(f"#!{sys.executable}\n" + STUB)
        self.stub.chmod(0o755)
        base = {"selectors": {"credit-score": "blue", "credit-score-preview": "green"},
                "images": {"blue": OLD, "green": OLD}, "monitor": OLD}
        base.update(state)
        self.state_path.write_text(json.dumps(base))
        self.log_path.write_text("")
        self.port = free_port()

    @property
    def state(self) -> dict:
        return json.loads(self.state_path.read_text())

    @property
    def commands(self) -> list[list[str]]:
        out = []
        for line in self.log_path.read_text().splitlines():
            args = json.loads(line)
            assert args[:2] == NS, args
            out.append(args[2:])
        return out

    def live_history(self) -> list[str]:
        return [c for name, c in self.state.get("history", []) if name == "credit-score"]

    def env(self) -> dict[str, str]:
        return {"KUBECTL": str(self.stub), "STUB_STATE": str(self.state_path), "STUB_LOG": str(self.log_path)}


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    def make(**state) -> Cluster:
        c = Cluster(tmp_path, **state)
        for k, v in c.env().items():
            monkeypatch.setenv(k, v)
        return c
    return make


def run(c: Cluster, *args: str, capsys=None) -> int:
    return bluegreen().main(["--timeout", "120", "--smoke-timeout", "10", "--local-port", str(c.port), *args])


# the exact kubectl commands, in order
def reads() -> list[list[str]]:
    return [["get", "service", "credit-score", "-o", COLOR], ["get", "service", "credit-score-preview", "-o", COLOR]]


def checks(colour: str, port: int) -> list[list[str]]:
    return [["rollout", "status", f"deployment/credit-score-{colour}", "--timeout=120s"],
            ["wait", "--for=condition=Available", f"deployment/credit-score-{colour}", "--timeout=120s"],
            ["port-forward", "--address", "127.0.0.1", "service/credit-score-preview", f"{port}:80"]]


def patch(service: str, colour: str) -> list[str]:
    return ["patch", "service", service, "--type=merge", "-p", json.dumps({"spec": {"selector": {"color": colour}}},
                                                                          separators=(",", ":"))]


def switch(new: str, old: str, port: int, image: str) -> list[list[str]]:
    return [["get", "deployment", f"credit-score-{new}", "-o", IMAGE],
            ["get", "deployment", f"credit-score-{old}", "-o", IMAGE],
            patch("credit-score", new),
            ["get", "service", "credit-score", "-o", COLOR],
            ["port-forward", "--address", "127.0.0.1", "service/credit-score", f"{port}:80"],
            patch("credit-score-preview", old),
            ["set", "image", "cronjob/credit-score-monitor", f"monitor={image}"]]


# ---- the happy path --------------------------------------------------------------------------------------
def test_deploy_switches_to_the_idle_colour(cluster, capsys):
    c = cluster()
    assert run(c, "deploy", NEW) == 0
    assert c.commands == [*reads(), ["set", "image", "deployment/credit-score-green", f"credit-score={NEW}"],
                          *checks("green", c.port), *switch("green", "blue", c.port, NEW)]
    s = c.state
    assert s["selectors"] == {"credit-score": "green", "credit-score-preview": "blue"}
    assert s["images"] == {"blue": OLD, "green": NEW} and s["monitor"] == NEW
    out = capsys.readouterr().out
    assert "deploying" in out and "done" in out and "rollback" in out


def test_deploy_from_green_goes_to_blue_and_writes_the_release_file(cluster, tmp_path):
    c = cluster(selectors={"credit-score": "green", "credit-score-preview": "blue"})
    release = tmp_path / "release.yaml"
    assert run(c, "--release-file", str(release), "deploy", NEW) == 0
    assert c.commands[2] == ["set", "image", "deployment/credit-score-blue", f"credit-score={NEW}"]
    assert c.state["selectors"] == {"credit-score": "blue", "credit-score-preview": "green"}
    docs = list(yaml.safe_load_all(release.read_text()))
    got = {d["metadata"]["name"]: d for d in docs}
    assert got["credit-score-blue"]["spec"]["template"]["spec"]["containers"][0]["image"] == NEW
    assert got["credit-score-green"]["spec"]["template"]["spec"]["containers"][0]["image"] == OLD
    assert got["credit-score"]["spec"]["selector"] == {"color": "blue"}
    assert got["credit-score-preview"]["spec"]["selector"] == {"color": "green"}
    assert got["credit-score-monitor"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0][
        "image"] == NEW


def test_deploy_no_switch_stops_after_the_checks(cluster, capsys):
    c = cluster()
    assert run(c, "deploy", NEW, "--no-switch") == 0
    assert c.commands == [*reads(), ["set", "image", "deployment/credit-score-green", f"credit-score={NEW}"],
                          *checks("green", c.port)]
    assert c.state["selectors"]["credit-score"] == "blue"
    assert "switch" in capsys.readouterr().out


def test_switch_then_rollback(cluster):
    c = cluster(images={"blue": OLD, "green": NEW})
    assert run(c, "switch") == 0
    assert c.commands == [*reads(), ["get", "deployment", "credit-score-green", "-o", IMAGE],
                          *checks("green", c.port), *switch("green", "blue", c.port, NEW)]
    assert c.state["selectors"]["credit-score"] == "green"
    c.log_path.write_text("")
    assert run(c, "rollback") == 0
    assert c.commands == [*reads(), ["get", "deployment", "credit-score-blue", "-o", IMAGE],
                          *checks("blue", c.port), *switch("blue", "green", c.port, OLD)]
    assert c.state["selectors"] == {"credit-score": "blue", "credit-score-preview": "green"}
    assert c.state["monitor"] == OLD


def test_status(cluster, capsys):
    c = cluster(images={"blue": OLD, "green": NEW})
    assert run(c, "status") == 0
    out = capsys.readouterr().out
    assert "blue  live" in out and NEW in out
    assert all(cmd[0] == "get" for cmd in c.commands)


# ---- failures: the live Service never points at a colour that failed its checks ---------------------------
def assert_live_untouched(c: Cluster, live: str = "blue"):
    assert c.state["selectors"]["credit-score"] == live
    assert not any(cmd[0] == "patch" and cmd[2] == "credit-score" for cmd in c.commands)
    assert c.state["monitor"] == OLD


def test_rollout_timeout_never_switches(cluster, capsys):
    c = cluster(rollout_timeout=["green"])
    assert run(c, "deploy", NEW) == 3
    assert c.commands == [*reads(), ["set", "image", "deployment/credit-score-green", f"credit-score={NEW}"],
                          checks("green", c.port)[0]]
    assert_live_untouched(c)
    err = capsys.readouterr().err
    assert "rollout of credit-score-green did not finish within 120 s" in err
    assert "timed out waiting for the condition" in err and "still selects blue" in err


def test_unavailable_deployment_never_switches(cluster, capsys):
    c = cluster(unavailable=["green"])
    assert run(c, "deploy", NEW) == 3
    assert c.commands[-1][0] == "wait"
    assert_live_untouched(c)
    assert "not Available" in capsys.readouterr().err


@pytest.mark.parametrize("behaviour, message", [
    ("not_ready", "GET /ready answered 503"),
    ("bad_predict", "POST /predict answered 500"),
    ("port_forward_fails", "port-forward exited"),
])
def test_failed_smoke_request_never_switches(cluster, capsys, behaviour, message):
    c = cluster(health={"green": behaviour})
    assert run(c, "deploy", NEW) == 4
    assert c.commands == [*reads(), ["set", "image", "deployment/credit-score-green", f"credit-score={NEW}"],
                          *checks("green", c.port)]
    assert_live_untouched(c)
    err = capsys.readouterr().err
    assert "smoke request through credit-score-preview (green) failed" in err and message in err
    assert "still selects blue" in err


def test_refused_selector_patch(cluster, capsys):
    c = cluster(refuse_patch=["credit-score"])
    assert run(c, "deploy", NEW) == 5
    assert c.commands[-1] == patch("credit-score", "green")
    assert c.state["selectors"] == {"credit-score": "blue", "credit-score-preview": "green"}
    assert c.live_history() == [] and c.state["monitor"] == OLD
    err = capsys.readouterr().err
    assert "patching Service credit-score to green was refused" in err and "Forbidden" in err
    assert "still selects blue" in err


def test_failed_verification_patches_the_live_service_back(cluster, capsys):
    c = cluster(health={"green": "broken_when_live"})
    assert run(c, "deploy", NEW) == 6
    assert c.commands[-3:] == [["get", "service", "credit-score", "-o", COLOR],
                               ["port-forward", "--address", "127.0.0.1", "service/credit-score", f"{c.port}:80"],
                               patch("credit-score", "blue")]
    assert c.live_history() == ["green", "blue"]
    assert c.state["selectors"] == {"credit-score": "blue", "credit-score-preview": "green"}
    assert c.state["monitor"] == OLD
    assert "back on blue" in capsys.readouterr().err


def test_preview_patch_failure_after_a_verified_switch_is_reported(cluster, capsys):
    c = cluster(refuse_patch=["credit-score-preview"])
    assert run(c, "deploy", NEW) == 1
    assert c.state["selectors"] == {"credit-score": "green", "credit-score-preview": "green"}
    assert c.state["monitor"] == NEW  # the remaining steps still ran
    err = capsys.readouterr().err
    assert "green is live and verified, but" in err and "kubectl patch service credit-score-preview" in err


def test_rollback_to_a_colour_that_fails_its_checks_is_refused(cluster, capsys):
    c = cluster(selectors={"credit-score": "green", "credit-score-preview": "blue"}, health={"blue": "not_ready"})
    assert run(c, "rollback") == 4
    assert_live_untouched(c, live="green")


def test_inconsistent_services_are_refused_before_anything_changes(cluster, capsys):
    c = cluster(selectors={"credit-score": "blue", "credit-score-preview": "blue"})
    assert run(c, "deploy", NEW) == 1
    assert c.commands == reads()
    assert "both Services select blue" in capsys.readouterr().err


def test_unreadable_service(cluster, capsys):
    c = cluster(unreadable=["credit-score"])
    assert run(c, "deploy", NEW) == 1
    assert c.commands == reads()[:1]
    assert "could not read the selector of Service credit-score" in capsys.readouterr().err


def test_missing_kubectl(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("KUBECTL", str(tmp_path / "no-such-kubectl"))
    assert bluegreen().main(["status"]) == 1
    assert "kubectl not found" in capsys.readouterr().err


def test_command_line(cluster):
    """As a person runs it: a separate process, its exit code and message."""
    c = cluster(rollout_timeout=["green"])
    proc = subprocess.run([sys.executable, str(SCRIPT), "--timeout", "5", "deploy", NEW], capture_output=True,
                          text=True, timeout=60, env={**c.env(), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 3
    assert proc.stderr.startswith("bluegreen: error: rollout of credit-score-green")
    proc = subprocess.run([sys.executable, str(SCRIPT), "deploy"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "image" in proc.stderr


# ---- rollback moves the model too (issue 14): a real local MLflow registry and the real `credit-score` command ----
def test_rollback_restores_the_champion_the_live_release_replaced_first(cluster, capsys, tmp_path, schema,
                                                                           small_frame):
    from app.registry import Registry
    from app.registry_release import promote_for_release
    from tests.conftest import make_settings
    from tests.helpers import fit_bundle, register_bundle

    settings = make_settings(tmp_path / "store")
    reg = Registry(settings)
    bundle = fit_bundle(schema, small_frame)
    v1, v2, v3 = (register_bundle(settings, bundle, tmp_path) for _ in range(3))
    reg.promote(v1, "champion")
    reg.promote(v2, "challenger")
    # what `make promote-production` did after the deploy of NEW (now live on green)
    assert promote_for_release(reg, v2, v2, "production", ["1.1.0", NEW]) == (True, v1)
    c = cluster(selectors={"credit-score": "green", "credit-score-preview": "blue"}, images={"blue": OLD, "green": NEW})
    cli = f"{sys.executable} -m app.cli"
    store = {"CREDIT_SCORE_MODELS_DIR": str(settings.models_dir)}

    # the champion moved after the deploy: refused before anything changes (the colour stays too)
    reg.promote(v3, "champion")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in store.items():
            mp.setenv(k, v)
        assert run(c, "rollback", "--model-env", "production", "--registry-cli", cli) == 8
        err = capsys.readouterr().err
        assert "model rollback refused" in err and "now points at v3" in err and "still selects green" in err, err
        assert c.commands == [*reads(), ["get", "deployment", "credit-score-green", "-o", IMAGE]]
        assert reg.alias_version("champion") == v3 and c.state["selectors"]["credit-score"] == "green"

        reg.client.set_registered_model_alias(reg.name, "champion", v2)  # back to what the deploy set
        c.log_path.write_text("")
        assert run(c, "rollback", "--model-env", "production", "--registry-cli", cli) == 0
    out = capsys.readouterr().out
    assert reg.alias_version("champion") == v1, out
    assert out.index("model: champion: v2 -> v1") < out.index("rollback: live green -> blue"), out
    assert c.state["selectors"] == {"credit-score": "blue", "credit-score-preview": "green"}
    assert c.commands[:3] == [*reads(), ["get", "deployment", "credit-score-green", "-o", IMAGE]]
    # without --model-env the colour alone goes back, and it says so
    c.log_path.write_text("")
    assert run(c, "rollback") == 0
    assert "model: not checked" in capsys.readouterr().out and reg.alias_version("champion") == v1
