#!/usr/bin/env python3
"""Blue-green releases of credit-score on Kubernetes, with nothing but kubectl.

Two Deployments, ``credit-score-blue`` and ``credit-score-green``, share one pod template. The Service
``credit-score`` selects the live colour and ``credit-score-preview`` the idle one (their ``color`` selector).

``deploy IMAGE``: set IMAGE on the idle colour -> ``kubectl rollout status`` (bounded) -> wait until the
Deployment is Available -> smoke requests through the preview Service (``kubectl port-forward`` to
127.0.0.1: GET /ready must answer 200, POST /predict a valid prediction) -> patch the live Service's selector
to the idle colour -> patch the preview Service to the old colour -> verify (the live selector reads back,
and the smoke requests pass through the live Service; if not, the selectors are patched back) -> point the
monitor CronJob at the new image -> optionally rewrite the overlay's release.yaml.

``switch`` promotes the idle colour after the same checks (after ``deploy --no-switch``, or a canary);
``rollback`` is the same move back to the previous colour, which still runs the previous release; with
``--model-env ENV`` (``make rollback`` passes DEPLOY_ENV) it first restores the champion alias the live release's
deploy replaced (``credit-score registry rollback --deploy-env ENV --release <live image>``, through
``--registry-cli``): exactly the recorded version, refused when the alias moved since (then nothing changes);
nothing when that deploy promoted no model. The model goes first, so the previous colour is checked with it;
``status`` prints both colours, their images and which one is live.

The live Service is only ever patched to a colour that passed every check; each failure stops with a
message saying what failed and where the live Service points, and a non-zero exit code:
1 cluster state unreadable or inconsistent, 2 usage, 3 rollout or readiness failed, 4 smoke request failed,
5 the live Service's selector could not be patched, 6 verification after the switch failed (rolled back),
7 rolling back after a failed verification failed too (act now: see the message), 8 the model rollback was
refused or failed (nothing changed).

The kubectl command is ``$KUBECTL`` (split like a shell would: ``KUBECTL="kubectl --context prod"``),
``kubectl`` by default. Usage: ``bluegreen.py --help``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

COLORS = ("blue", "green")
APP = "credit-score"
CONTAINER = "credit-score"
LIVE_SERVICE = "credit-score"
PREVIEW_SERVICE = "credit-score-preview"
MONITOR_CRONJOB = "credit-score-monitor"
MONITOR_CONTAINER = "monitor"
SERVICE_PORT = 80

EXIT_STATE, EXIT_USAGE, EXIT_ROLLOUT, EXIT_SMOKE, EXIT_SWITCH, EXIT_VERIFY, EXIT_ROLLBACK = 1, 2, 3, 4, 5, 6, 7
EXIT_MODEL = 8

# one applicant with every feature of the default schema (data/schemas/uci_credit.yaml)
SMOKE_APPLICANT = {
    "limit_bal": 120000, "sex": 2, "education": 2, "marriage": 2, "age": 35,
    "pay_0": 0, "pay_2": 0, "pay_3": 0, "pay_4": 0, "pay_5": 0, "pay_6": 0,
    "bill_amt1": 45000, "bill_amt2": 43000, "bill_amt3": 41000, "bill_amt4": 39000, "bill_amt5": 37000,
    "bill_amt6": 35000, "pay_amt1": 2000, "pay_amt2": 2000, "pay_amt3": 1800, "pay_amt4": 1500,
    "pay_amt5": 1500, "pay_amt6": 1500,
}


class Failure(Exception):
    """A step failed: the message says what, and where the live Service points."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


class Kubectl:
    """Runs kubectl in one namespace; every call is bounded in time."""

    def __init__(self, namespace: str, context: str | None = None, timeout: float = 60.0):
        self.base = shlex.split(os.environ.get("KUBECTL", "kubectl"))
        if context:
            self.base += ["--context", context]
        self.base += ["--namespace", namespace]
        self.timeout = timeout

    def argv(self, *args: str) -> list[str]:
        return [*self.base, *args]

    def run(self, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(self.argv(*args), capture_output=True, text=True,  # noqa: S603
                                  timeout=timeout or self.timeout, stdin=subprocess.DEVNULL)
        except FileNotFoundError as e:
            raise Failure(f"kubectl not found ({self.base[0]}): install it or set KUBECTL", EXIT_STATE) from e
        except subprocess.TimeoutExpired as e:
            return subprocess.CompletedProcess(e.cmd, 124, "", f"kubectl did not answer within {e.timeout:.0f} s")

    def output(self, *args: str, what: str) -> str:
        proc = self.run(*args)
        if proc.returncode != 0:
            raise Failure(f"could not read {what}: {_last_line(proc.stderr)}", EXIT_STATE)
        return proc.stdout.strip()


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else "(no message)"


def other(colour: str) -> str:
    return COLORS[1 - COLORS.index(colour)]


def deployment(colour: str) -> str:
    return f"{APP}-{colour}"


class BlueGreen:
    def __init__(self, kubectl: Kubectl, rollout_timeout: int, smoke_timeout: float, local_port: int,
                 out=sys.stdout, err=sys.stderr):
        self.k = kubectl
        self.rollout_timeout = rollout_timeout
        self.smoke_timeout = smoke_timeout
        self.local_port = local_port
        self.out, self.err = out, err

    def say(self, message: str) -> None:
        print(f"bluegreen: {message}", file=self.out, flush=True)

    # ---- reading the state --------------------------------------------------------------------------
    def selector(self, service: str) -> str:
        colour = self.k.output("get", "service", service, "-o", "jsonpath={.spec.selector.color}",
                               what=f"the selector of Service {service}")
        if colour not in COLORS:
            raise Failure(f"Service {service} selects color={colour!r}, expected one of {COLORS}", EXIT_STATE)
        return colour

    def colours(self) -> tuple[str, str]:
        """(live, idle), refusing an inconsistent pair of Services."""
        live = self.selector(LIVE_SERVICE)
        preview = self.selector(PREVIEW_SERVICE)
        if preview == live:
            raise Failure(f"both Services select {live}: the preview Service should select {other(live)}. "
                          f"Fix it with: kubectl patch service {PREVIEW_SERVICE} --type=merge "
                          f"-p '{_selector_patch(other(live))}'", EXIT_STATE)
        return live, preview

    def image(self, colour: str) -> str:
        return self.k.output("get", "deployment", deployment(colour), "-o",
                             f'jsonpath={{.spec.template.spec.containers[?(@.name=="{CONTAINER}")].image}}',
                             what=f"the image of {deployment(colour)}")

    # ---- checks --------------------------------------------------------------------------------------
    def check(self, colour: str, live: str) -> None:
        """Rollout finished, Deployment Available, smoke requests through the preview Service pass."""
        name = deployment(colour)
        t = self.rollout_timeout
        proc = self.k.run("rollout", "status", f"deployment/{name}", f"--timeout={t}s", timeout=t + 30)
        if proc.returncode != 0:
            raise Failure(f"rollout of {name} did not finish within {t} s ({_last_line(proc.stderr)}); "
                          f"the live Service still selects {live}", EXIT_ROLLOUT)
        proc = self.k.run("wait", "--for=condition=Available", f"deployment/{name}", f"--timeout={t}s",
                          timeout=t + 30)
        if proc.returncode != 0:
            raise Failure(f"{name} is not Available within {t} s ({_last_line(proc.stderr)}); the live "
                          f"Service still selects {live}", EXIT_ROLLOUT)
        self.say(f"{name} rolled out and Available")
        problem = self.smoke(PREVIEW_SERVICE)
        if problem:
            raise Failure(f"smoke request through {PREVIEW_SERVICE} ({colour}) failed: {problem}; the live "
                          f"Service still selects {live}", EXIT_SMOKE)
        self.say(f"smoke requests through {PREVIEW_SERVICE} ({colour}) passed")

    def smoke(self, service: str) -> str | None:
        """None when GET /ready and POST /predict through `service` pass, else what went wrong."""
        port = self.local_port or _free_port()
        argv = self.k.argv("port-forward", "--address", "127.0.0.1", f"service/{service}", f"{port}:{SERVICE_PORT}")
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,  # noqa: S603
                                    stderr=subprocess.PIPE, text=True)
        except FileNotFoundError:
            return f"kubectl not found ({argv[0]})"
        try:
            deadline = time.monotonic() + self.smoke_timeout
            while not _connectable(port):
                if proc.poll() is not None:
                    return f"kubectl port-forward exited: {_last_line(proc.stderr.read())}"
                if time.monotonic() > deadline:
                    return f"kubectl port-forward did not listen on 127.0.0.1:{port} within {self.smoke_timeout:.0f} s"
                time.sleep(0.1)
            base = f"http://127.0.0.1:{port}"
            status, body = _http("GET", f"{base}/ready", None, self.smoke_timeout)
            if status != 200:
                return f"GET /ready answered {status}: {body[:200]}"
            status, body = _http("POST", f"{base}/predict", SMOKE_APPLICANT, self.smoke_timeout)
            if status != 200:
                return f"POST /predict answered {status}: {body[:200]}"
            try:
                answer = json.loads(body)
            except json.JSONDecodeError:
                return f"POST /predict answered something that is not JSON: {body[:200]}"
            if not isinstance(answer, dict) or "prediction" not in answer or "model" not in answer:
                return f"POST /predict answered without prediction or model: {body[:200]}"
            return None
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    # ---- moves ---------------------------------------------------------------------------------------
    def patch(self, service: str, colour: str) -> subprocess.CompletedProcess:
        return self.k.run("patch", "service", service, "--type=merge", "-p", _selector_patch(colour))

    def switch(self, new: str, old: str, release_file: Path | None) -> None:
        """Point the live Service at `new` (which passed its checks), verify, else patch it back."""
        new_image, old_image = self.image(new), self.image(old)
        proc = self.patch(LIVE_SERVICE, new)
        if proc.returncode != 0:
            raise Failure(f"patching Service {LIVE_SERVICE} to {new} was refused ({_last_line(proc.stderr)}); "
                          f"the live Service still selects {old}", EXIT_SWITCH)
        self.say(f"Service {LIVE_SERVICE} now selects {new} ({new_image})")
        problems = []
        try:
            live = self.selector(LIVE_SERVICE)
        except Failure as e:
            live = None
            problems.append(str(e))
        if live is not None and live != new:
            problems.append(f"Service {LIVE_SERVICE} reads back color={live}, expected {new}")
        if not problems:
            problem = self.smoke(LIVE_SERVICE)
            if problem:
                problems.append(f"smoke request through {LIVE_SERVICE} failed: {problem}")
        if problems:
            self.revert(new, old, "; ".join(problems))
        self.say(f"verified: {LIVE_SERVICE} -> {new}")
        leftovers = []
        proc = self.patch(PREVIEW_SERVICE, old)
        if proc.returncode == 0:
            self.say(f"{PREVIEW_SERVICE} -> {old} (the previous release, kept warm for rollback)")
        else:
            leftovers.append(f"patching {PREVIEW_SERVICE} to {old} failed ({_last_line(proc.stderr)}): run "
                             f"kubectl patch service {PREVIEW_SERVICE} --type=merge -p '{_selector_patch(old)}'")
        proc = self.k.run("set", "image", f"cronjob/{MONITOR_CRONJOB}", f"{MONITOR_CONTAINER}={new_image}")
        if proc.returncode != 0:
            leftovers.append(f"the monitor CronJob still runs the old image ({_last_line(proc.stderr)}): run "
                             f"kubectl set image cronjob/{MONITOR_CRONJOB} {MONITOR_CONTAINER}={new_image}")
        if release_file is not None:
            images = {new: new_image, old: old_image}
            release_file.write_text(render_release(images, live=new))
            self.say(f"wrote {release_file}: commit it, so that re-applying the overlay keeps this release")
        if leftovers:
            raise Failure(f"{new} is live and verified, but: " + "; ".join(leftovers), EXIT_STATE)

    def revert(self, new: str, old: str, why: str) -> None:
        self.say(f"verification failed ({why}); patching {LIVE_SERVICE} back to {old}")
        back = self.patch(LIVE_SERVICE, old)
        if back.returncode != 0:
            raise Failure(f"verification of {new} failed ({why}) AND patching {LIVE_SERVICE} back to {old} "
                          f"failed ({_last_line(back.stderr)}): the live Service may select {new}. Run: "
                          f"kubectl patch service {LIVE_SERVICE} --type=merge -p '{_selector_patch(old)}'",
                          EXIT_ROLLBACK)
        raise Failure(f"verification of {new} after the switch failed ({why}); the live Service is back "
                      f"on {old}", EXIT_VERIFY)

    # ---- commands ------------------------------------------------------------------------------------
    def deploy(self, image: str, switch: bool, release_file: Path | None) -> None:
        live, idle = self.colours()
        self.say(f"live: {live}; deploying {image} to {idle}")
        proc = self.k.run("set", "image", f"deployment/{deployment(idle)}", f"{CONTAINER}={image}")
        if proc.returncode != 0:
            raise Failure(f"could not set the image of {deployment(idle)} ({_last_line(proc.stderr)}); the "
                          f"live Service still selects {live}", EXIT_ROLLOUT)
        self.check(idle, live)
        if not switch:
            self.say(f"{idle} runs {image} and passed its checks; the live Service still selects {live}. "
                     f"Promote it with: bluegreen.py switch")
            return
        self.switch(idle, live, release_file)
        self.say(f"done: {image} is live on {idle}; roll back with: bluegreen.py rollback")

    def restore_model(self, environment: str, cli: list[str], live: str) -> None:
        """Champion alias back to the version the live release's deploy replaced (before any traffic moves)."""
        release = self.image(live)
        argv = [*cli, "registry", "rollback", "--deploy-env", environment, "--release", release, "--json"]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=180,  # noqa: S603
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise Failure(f"the model rollback could not run ({argv[0]}: {e}); nothing was changed, the live "
                          f"Service still selects {live}", EXIT_MODEL) from e
        if proc.returncode != 0:
            raise Failure(f"model rollback refused: {_last_line(proc.stderr)}; the live Service still selects "
                          f"{live} (without --model-env the colour alone goes back)", EXIT_MODEL)
        self.say(f"model: {json.loads(proc.stdout.strip().splitlines()[-1])['message']}")

    def promote(self, release_file: Path | None, verb: str, model_env: str | None = None,
                registry_cli: list[str] | None = None) -> None:
        live, idle = self.colours()
        if model_env:
            self.restore_model(model_env, registry_cli or ["credit-score"], live)
        self.say(f"{verb}: live {live} -> {idle} ({self.image(idle)})")
        self.check(idle, live)
        self.switch(idle, live, release_file)
        self.say(f"done: {idle} is live")

    def status(self) -> None:
        live, idle = self.colours()
        for colour in COLORS:
            role = "live" if colour == live else "idle (preview)"
            print(f"{colour:5s} {role:15s} {self.image(colour)}", file=self.out)


def render_release(images: dict[str, str], live: str) -> str:
    """The overlay's release.yaml: strategic-merge patches pinning both colours' images and the live colour."""
    docs = ["""# The blue-green release state of this environment: the image each colour runs and which colour is live.
# kubernetes/scripts/bluegreen.py rewrites this file after a switch (--release-file), so that re-applying
# the overlay keeps what the cluster runs. Change images here only for the first install."""]
    for colour in COLORS:
        docs.append(f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {deployment(colour)}
spec:
  template:
    spec:
      containers:
        - name: {CONTAINER}
          image: {images[colour]}""")
    docs.append(f"""apiVersion: batch/v1
kind: CronJob
metadata:
  name: {MONITOR_CRONJOB}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: {MONITOR_CONTAINER}
              image: {images[live]}""")
    for service, colour in ((LIVE_SERVICE, live), (PREVIEW_SERVICE, other(live))):
        docs.append(f"""apiVersion: v1
kind: Service
metadata:
  name: {service}
spec:
  selector:
    color: {colour}""")
    return docs[0] + "\n" + "\n---\n".join(docs[1:]) + "\n"


def _selector_patch(colour: str) -> str:
    return json.dumps({"spec": {"selector": {"color": colour}}}, separators=(",", ":"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _connectable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _http(method: str, url: str, payload: dict | None, timeout: float) -> tuple[int, str]:
    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(url, data=data, method=method,  # noqa: S310 (http://127.0.0.1 only)
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as e:
        return 0, f"no answer ({e})"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bluegreen.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="exit codes: 0 done, 1 state unreadable or inconsistent, 2 usage, 3 rollout "
                                       "or readiness failed,\n4 smoke request failed, 5 selector patch refused, "
                                       "6 verification failed (rolled back),\n7 rolling back failed too, "
                                       "8 model rollback refused. kubectl is $KUBECTL (default: kubectl).")
    p.add_argument("-n", "--namespace", default="credit-score")
    p.add_argument("--context", default=None, help="kubeconfig context (default: the current one)")
    p.add_argument("--timeout", type=int, default=300, help="seconds for the rollout and readiness [300]")
    p.add_argument("--smoke-timeout", type=float, default=15.0, help="seconds per smoke step [15]")
    p.add_argument("--local-port", type=int, default=0, help="127.0.0.1 port for port-forward [free one]")
    p.add_argument("--release-file", type=Path, default=None,
                   help="rewrite this overlay release.yaml after a switch (e.g. kubernetes/overlays/prod/release.yaml)")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("deploy", help="release IMAGE on the idle colour, check it, switch to it")
    d.add_argument("image", help="the serving image, e.g. registry.example.com/credit-score:1.4.0 (or @sha256:...)")
    d.add_argument("--no-switch", action="store_true", help="stop after the checks (then: switch, or a canary)")
    sub.add_parser("switch", help="check the idle colour and make it live")
    r = sub.add_parser("rollback", help="check the previous colour and make it live again")
    r.add_argument("--model-env", default=os.environ.get("CREDIT_SCORE_DEPLOY_ENV") or None,
                   help="first restore the champion the live release's deploy replaced in this environment "
                        "(e.g. production) [$CREDIT_SCORE_DEPLOY_ENV; unset: the model is not touched]")
    r.add_argument("--registry-cli", default=os.environ.get("CREDIT_SCORE_CLI", "credit-score"),
                   help="the credit-score command, split like a shell would [$CREDIT_SCORE_CLI or credit-score]")
    sub.add_parser("status", help="both colours, their images, which one is live")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.timeout < 1 or args.smoke_timeout <= 0:
        print("bluegreen: error: --timeout and --smoke-timeout must be positive", file=sys.stderr)
        return EXIT_USAGE
    bg = BlueGreen(Kubectl(args.namespace, args.context), args.timeout, args.smoke_timeout, args.local_port)
    try:
        if args.command == "deploy":
            bg.deploy(args.image, switch=not args.no_switch, release_file=args.release_file)
        elif args.command == "rollback":
            if not args.model_env:
                bg.say("model: not checked (no --model-env): the champion alias stays where it is")
            bg.promote(args.release_file, args.command, args.model_env, shlex.split(args.registry_cli))
        elif args.command == "switch":
            bg.promote(args.release_file, args.command)
        else:
            bg.status()
    except Failure as e:
        print(f"bluegreen: error: {e}", file=sys.stderr)
        return e.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
