"""jenkins/: the Jenkinsfile compiles with Groovy and passes npm-groovy-lint (CodeNarc) at error level without
leaving its server behind; every stage calls exactly one `make` target, each target exists in the Makefile,
and the non-deploy ones run in CI (.ci/run); credentials, plugins and the job in casc.yaml match what the
Jenkinsfile uses. There is no Jenkins controller here: the declarative schema itself is checked by a
controller's /pipeline-model-converter/validate (jenkins/README.md)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess

import pytest
import yaml

from app.config import PROJECT_ROOT
from tests.tools import which

JENKINS = PROJECT_ROOT / "jenkins"
JENKINSFILE = JENKINS / "Jenkinsfile"
LINT = JENKINS / "lint.sh"
MAKEFILE = PROJECT_ROOT / "Makefile"
CI_RUN = PROJECT_ROOT / ".ci" / "run"

# targets that act on a real environment (registry push aside, which is a dry run unless PUBLISH=1)
DEPLOY_TARGETS = {"deploy-staging", "smoke", "rollback", "promote-production"}
# non-deploy targets that cannot run in CI on this kind of machine, and why
NOT_IN_CI = {
    "image-scan": "needs trivy and its vulnerability database, neither obtainable here (no registry/GitHub access)",
}


def make_calls(text: str) -> list[str]:
    """Targets of every `make ...` in sh steps (flags and VAR=value arguments skipped)."""
    out = []
    for m in re.finditer(r"""sh\s+(?:"make\s+([^"]+)"|'make\s+([^']+)')""", text):
        out += [w for w in (m.group(1) or m.group(2)).split() if re.fullmatch(r"[a-z][a-z0-9-]*", w)]
    return out


def makefile_targets() -> set[str]:
    targets = set()
    for line in MAKEFILE.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.%-][A-Za-z0-9_.% -]*):(?!=)", line)
        if m:
            targets.update(m.group(1).split())
    return targets


def ci_targets() -> set[str]:
    found = set()
    for line in CI_RUN.read_text().splitlines():
        line = line.split("#", 1)[0]
        for m in re.finditer(r"\bmake\s+([^;&|]+)", line):
            found.update(w for w in m.group(1).split() if not w.startswith("-") and "=" not in w)
    return found


def stage_blocks(text: str) -> dict[str, str]:
    """stage('Name') -> its body (brace matching; strings hold no braces in this file)."""
    out = {}
    for m in re.finditer(r"stage\('([^']+)'\)\s*\{", text):
        depth, i = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        out[m.group(1)] = text[m.end():i - 1]
    return out


def groovy_env() -> dict[str, str]:
    env = dict(os.environ)
    if "JAVA_HOME" not in env and which("java"):
        env["JAVA_HOME"] = os.path.dirname(os.path.dirname(os.path.realpath(which("java"))))
    return env


def test_jenkinsfile_compiles_with_groovy(tmp_path):
    groovyc = which("groovyc")
    if groovyc is None:
        pytest.skip("groovyc is not installed (Debian package groovy)")
    src = tmp_path / "Jenkinsfile.groovy"
    shutil.copy(JENKINSFILE, src)
    ok = subprocess.run([groovyc, "-d", str(tmp_path / "ok"), str(src)], capture_output=True, text=True,
                        env=groovy_env(), timeout=300)
    assert ok.returncode == 0, ok.stderr
    broken = tmp_path / "Broken.groovy"
    broken.write_text(JENKINSFILE.read_text().replace("stages {", "stages {{", 1))
    bad = subprocess.run([groovyc, "-d", str(tmp_path / "bad"), str(broken)], capture_output=True, text=True,
                         env=groovy_env(), timeout=300)
    assert bad.returncode != 0, "groovyc accepted an unbalanced Jenkinsfile"


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_lint_script_passes_at_error_level_and_leaves_no_server(tmp_path):
    for tool in ("groovyc", "java", "npm"):
        if which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian groovy, a JRE, and npm are needed for the lint)")
    server_before = _port_open(7484)
    proc = subprocess.run([str(LINT)], capture_output=True, text=True, env=groovy_env(), timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Error" in proc.stdout and re.search(r"'Error'\s*│\s*0\b", proc.stdout), proc.stdout[-1500:]
    if not server_before:
        assert not _port_open(7484), "npm-groovy-lint left its CodeNarc server on 127.0.0.1:7484"
    # and the lint can fail: an error-level finding (a tab-indented, unreachable `return` is not enough, a
    # missing closing brace is a parse error CodeNarc reports as an error)
    broken = tmp_path / "Jenkinsfile"
    broken.write_text(JENKINSFILE.read_text().rstrip().removesuffix("}"))
    bad = subprocess.run([str(LINT), str(broken)], capture_output=True, text=True, env=groovy_env(), timeout=900)
    assert bad.returncode != 0, bad.stdout[-2000:]


def test_every_stage_calls_exactly_one_make_target():
    text = JENKINSFILE.read_text()
    blocks = stage_blocks(text)
    leaf = {name: body for name, body in blocks.items() if "stage(" not in body}
    assert len(leaf) >= 15, sorted(leaf)
    for name, body in leaf.items():
        steps = body.split("post {", 1)[0]
        calls = re.findall(r"""sh\s+(?:"([^"]+)"|'([^']+)')""", steps)
        calls = [a or b for a, b in calls]
        assert len(calls) == 1 and calls[0].startswith("make "), f"stage {name!r} runs {calls}"


def test_make_targets_exist_and_non_deploy_ones_run_in_ci():
    called = set(make_calls(JENKINSFILE.read_text()))
    assert DEPLOY_TARGETS <= called
    missing = sorted(called - makefile_targets())
    assert not missing, f"the Jenkinsfile calls make targets the Makefile lacks: {missing}"
    not_in_ci = sorted(called - DEPLOY_TARGETS - set(NOT_IN_CI) - ci_targets())
    assert not not_in_ci, f"non-deploy targets the Jenkinsfile calls but .ci/run does not run: {not_in_ci}"


def test_pipeline_shape():
    text = JENKINSFILE.read_text()
    blocks = stage_blocks(text)
    for stage in ("Checkout", "Setup", "Lint", "Test", "Data validation", "Train", "Quality gate", "Build images",
                  "Scan", "Push", "Deploy to staging", "Smoke test staging", "Promote to production",
                  "Smoke test production"):
        assert stage in blocks, stage
    assert "disableConcurrentBuilds()" in text and "timeout(time:" in text
    assert re.search(r"post\s*\{\s*always\s*\{\s*junit\b[^}]*archiveArtifacts", text, re.S)
    promote = blocks["Promote to production"]
    assert re.search(r"input\s*\{[^}]*submitter", promote, re.S), "production needs an input approval"
    for name in ("Train", "Quality gate"):
        assert "changeset 'data/**'" in blocks[name] and "changeset 'app/training/**'" in blocks[name]
        assert "params.FORCE_TRAIN" in blocks[name]
    assert "make push PUBLISH=" in blocks["Push"]
    for env in ("staging", "production"):
        smoke = blocks[f"Smoke test {env}"]
        assert re.search(r"post\s*\{\s*failure\s*\{.*make rollback DEPLOY_ENV=" + env, smoke, re.S), env


def test_credentials_and_plugins_match_casc():
    text = JENKINSFILE.read_text()
    used = set(re.findall(r"credentialsId:\s*['\"]([^'\"$]+)['\"]", text))
    used |= {f"kubeconfig-{e}" for e in re.findall(r"deployCredentials\('([a-z]+)'\)", text)}
    casc = yaml.safe_load((JENKINS / "casc.yaml").read_text())
    creds = casc["credentials"]["system"]["domainCredentials"][0]["credentials"]
    defined = {next(iter(c.values()))["id"]: next(iter(c)) for c in creds}
    assert used <= set(defined), f"credentials used but not in casc.yaml: {sorted(used - set(defined))}"
    for cid in used:  # every pipeline credential is a Vault-backed one (values stay in Vault)
        assert defined[cid].startswith("vault"), (cid, defined[cid])
    assert casc["unclassified"]["hashicorpVault"]["configuration"]["vaultCredentialId"] in defined
    job = casc["jobs"][0]["script"]
    assert "multibranchPipelineJob" in job and "scriptPath('jenkins/Jenkinsfile')" in job
    assert casc["unclassified"]["gitHubPluginConfig"]["hookUrl"].endswith("github-webhook/")

    plugins = {ln.split(":")[0].strip() for ln in (JENKINS / "plugins.txt").read_text().splitlines()
               if ln.strip() and not ln.startswith("#")}
    needed = {"configuration-as-code", "job-dsl", "workflow-aggregator", "pipeline-model-definition", "github",
              "github-branch-source", "credentials-binding", "hashicorp-vault-plugin", "junit", "coverage",
              "timestamper", "ansicolor", "ssh-credentials", "plain-credentials"}
    assert needed <= plugins, sorted(needed - plugins)


def test_casc_has_no_secret_values():
    text = (JENKINS / "casc.yaml").read_text()
    for key in ("password", "secretId", "roleId", "token"):
        for m in re.finditer(rf"^\s*{key}:\s*(\S+)", text, re.M):
            assert m.group(1).strip('"').startswith("${"), f"{key} has a literal value in casc.yaml"
