"""jenkins/: the Jenkinsfile compiles with Groovy and passes npm-groovy-lint (CodeNarc) at error level without
leaving its server behind; every stage calls exactly one `make` target, each target exists in the Makefile,
and the non-deploy ones run in CI (.ci/run); credentials, plugins and the job in casc.yaml match what the
Jenkinsfile uses. There is no Jenkins controller here: the declarative schema itself is checked by a
controller's /pipeline-model-converter/validate (jenkins/README.md)."""

from __future__ import annotations

import json
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
    for name in ("Train", "Train without registering", "Quality gate"):
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


# ---- release rules (issue 15): who registers, what is promoted, who approves -----------------------------------

def when_block(body: str) -> str:
    m = re.search(r"when\s*\{", body)
    if not m:
        return ""
    depth, i = 1, m.end()
    while depth:
        depth += {"{": 1, "}": -1}.get(body[i], 0)
        i += 1
    return body[m.end():i - 1]


def release_regexes(text: str) -> tuple[str, str]:
    """(branch name, tag pattern) of isRelease() in the Jenkinsfile."""
    body = re.search(r"boolean isRelease\(\)\s*\{(.*?)\n\}", text, re.S).group(1)
    branch = re.search(r"env\.BRANCH_NAME == '([^']+)'", body).group(1)
    tag = re.search(r"env\.TAG_NAME \?: ''\) ==~ /([^/]+)/", body).group(1)
    return branch, tag


def test_only_main_and_release_tags_are_release_builds():
    branch, tag = release_regexes(JENKINSFILE.read_text())
    assert branch == "main"
    for name in ("v1.2.3", "v10.0.12"):
        assert re.fullmatch(tag, name), name
    for name in ("v1.2", "release-1.2.3", "v1.2.3-rc1", "main", "PR-12", "v1.2.3; rm -rf"):
        assert not re.fullmatch(tag, name), name


def test_registry_and_deploy_credentials_are_bound_on_release_builds_only():
    blocks = stage_blocks(JENKINSFILE.read_text())
    leaf = {name: body for name, body in blocks.items() if "stage(" not in body}
    privileged = {name for name, body in leaf.items()
                  if re.search(r"(mlflowCredentials|deployCredentials)\(", body)}
    assert {"Train", "Deploy to staging", "Smoke test staging", "Promote to production",
            "Smoke test production"} <= privileged, privileged
    for name in privileged:
        assert "expression { return isRelease() }" in when_block(leaf[name]), f"{name} runs on any branch"
    train, check = leaf["Train"], leaf["Train without registering"]
    assert make_calls(train) == ["train-ci"] and make_calls(check) == ["train-check"]
    assert "expression { return !isRelease() }" in when_block(check)
    assert "withCredentials" not in check, "a branch/pull-request build must not see registry credentials"
    # the release build keeps the number of the version it registered for the promotion
    assert re.search(r"env\.MODEL_VERSION = readFile\('reports/registered-version'\)", train)
    promote = leaf["Promote to production"]
    assert make_calls(promote) == ["promote-production"] and "MODEL_VERSION=${env.MODEL_VERSION" in promote


def makefile_recipe(target: str) -> str:
    text = MAKEFILE.read_text()
    m = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", text, re.M)
    assert m, target
    return m.group(1)


def test_make_targets_register_only_in_train_ci_and_promote_the_recorded_version():
    check, release = makefile_recipe("train-check"), makefile_recipe("train-ci")
    assert "--no-register" in check and "--promote" not in check
    assert "--no-register" not in release and "reports/registered-version" in release
    promote = makefile_recipe("promote-production")
    assert "registry promote $(MODEL_VERSION) --alias champion --expect-challenger $(MODEL_VERSION)" in promote
    assert "promote challenger" not in promote, "promotes whatever the challenger alias points at"


def test_make_promote_production_refuses_a_version_that_is_not_a_number():
    make = which("make")
    if make is None:
        pytest.skip("make is not installed")
    bad = subprocess.run([make, "-s", "-o", "setup-dev", "promote-production", "MODEL_VERSION=2;id", "BIN=/bin",
                          "DEPLOY_PATH=none"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "MODEL_VERSION must be a version number" in bad.stderr, bad.stderr
    # a number passes the check and goes on to the deploy (here refused: DEPLOY_PATH=none)
    good = subprocess.run([make, "-s", "-o", "setup-dev", "promote-production", "MODEL_VERSION=12", "BIN=/bin",
                           "DEPLOY_PATH=none"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert "MODEL_VERSION must be" not in good.stderr and "DEPLOY_PATH must be" in good.stderr, good.stderr


def test_production_approval_is_restricted_to_a_group_the_authorization_strategy_enforces():
    text = JENKINSFILE.read_text()
    promote = stage_blocks(text)["Promote to production"]
    submitter = re.search(r"input\s*\{[^}]*submitter '([^']+)'", promote, re.S).group(1)
    casc = yaml.safe_load((JENKINS / "casc.yaml").read_text())
    strategy = casc["jenkins"]["authorizationStrategy"]
    # these make every logged-in (or every) user an administrator, who may answer any input: submitter is void
    assert set(strategy) == {"globalMatrix"}, f"authorization strategy {set(strategy)} ignores the submitter"
    entries = strategy["globalMatrix"]["entries"]
    perms: dict[tuple[str, str], set[str]] = {}
    for e in entries:
        (kind, spec), = e.items()
        perms[(kind, spec["name"])] = set(spec.get("permissions", []))
    assert ("group", submitter) in perms, f"the submitter group {submitter!r} has no entry in casc.yaml"
    assert "Job/Build" in perms[("group", submitter)]
    admins = [k for k, p in perms.items() if "Overall/Administer" in p]
    assert admins and all(kind == "group" and name != submitter for kind, name in admins), admins
    assert not any(name in ("authenticated", "anonymous") and p for (kind, name), p in perms.items()), \
        "every logged-in (or anonymous) user gets rights"
    # groups need a realm that has them (Jenkins' own user database has none)
    realm = casc["jenkins"]["securityRealm"]
    assert "ldap" in realm and realm["ldap"]["configurations"][0].get("groupSearchBase")
    plugins = (JENKINS / "plugins.txt").read_text().split()
    assert "matrix-auth" in plugins and "ldap" in plugins
    assert "gitHubTagDiscovery" in casc["jobs"][0]["script"], "release tags are never built"


# ---- issue 14: the Train stage trains on the configured real data and records its sources; rollbacks move the model

def groovy_function(text: str, name: str) -> str:
    m = re.search(rf"^List {name}\(\)\s*\{{.*?^\}}", text, re.S | re.M)
    assert m, name
    return m.group(0)


def test_train_stage_trains_on_the_configured_data_and_records_the_sources():
    text = JENKINSFILE.read_text()
    blocks = stage_blocks(text)
    train, check = blocks["Train"], blocks["Train without registering"]
    # the release build binds the data source beside the registry credentials and says when synthetic is wanted
    assert "withCredentials(mlflowCredentials() + trainingDataCredentials())" in train
    assert "withEnv(trainingDataEnv())" in train
    assert """sh "make train-ci TRAIN_SYNTHETIC=${params.TRAIN_ON_SYNTHETIC ? '1' : '0'}\"""" in train
    # parameters: the data (empty: the credential) and synthetic only when asked (default off)
    assert re.search(r"string\(name: 'TRAIN_DATA', defaultValue: ''", text)
    assert re.search(r"booleanParam\(name: 'TRAIN_ON_SYNTHETIC', defaultValue: false", text)
    assert "credentialsId: 'training-data-source', variable: 'CREDIT_SCORE_DATA'" in text
    # branch and pull-request builds: no credentials at all, synthetic data asked for explicitly
    assert make_calls(check) == ["train-check"] and "TRAIN_SYNTHETIC=1" in check
    # the recipe records the sources next to the summary, and both are archived with the build
    for target in ("train-ci", "train-check"):
        recipe = makefile_recipe(target)
        assert "check --synthetic $(TRAIN_SYNTHETIC)" in recipe, target
        assert "record --synthetic $(TRAIN_SYNTHETIC) reports/train.json > reports/train-data.json" in recipe
    assert re.search(r"archiveArtifacts[^}]*'reports/\*\*/\*\.xml, reports/\*\*/\*\.json", text, re.S)


def test_training_data_binding_evaluated_with_groovy(tmp_path):
    """trainingDataCredentials()/trainingDataEnv() of the Jenkinsfile, run by Groovy with the build's params."""
    groovy = which("groovy")
    if groovy is None:
        pytest.skip("groovy is not installed (Debian package groovy)")
    text = JENKINSFILE.read_text()
    script = tmp_path / "binding.groovy"
    script.write_text("\n".join([
        "def string(Map m) { return m }",
        "params = [:]",
        groovy_function(text, "trainingDataCredentials").replace("List trainingDataCredentials", "def creds"),
        groovy_function(text, "trainingDataEnv").replace("List trainingDataEnv", "def envs"),
        "[[TRAIN_DATA: '', TRAIN_ON_SYNTHETIC: false], [TRAIN_DATA: ' /srv/apps.csv ', TRAIN_ON_SYNTHETIC: false],",
        " [TRAIN_DATA: '', TRAIN_ON_SYNTHETIC: true], [TRAIN_DATA: '/srv/apps.csv', TRAIN_ON_SYNTHETIC: true]].each {",
        "  params = it",
        "  println(groovy.json.JsonOutput.toJson([creds: creds(), env: envs().collect { e -> e.toString() }]))",
        "}",
    ]))
    proc = subprocess.run([groovy, str(script)], capture_output=True, text=True, env=groovy_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    credential = [{"credentialsId": "training-data-source", "variable": "CREDIT_SCORE_DATA"}]
    assert got == [
        {"creds": credential, "env": []},                                   # the configured source (Vault)
        {"creds": [], "env": ["CREDIT_SCORE_DATA=/srv/apps.csv"]},          # the parameter wins, trimmed
        {"creds": [], "env": []},                                           # synthetic: no data bound at all
        {"creds": [], "env": []},
    ], got


def test_rollbacks_move_the_model_too():
    text = JENKINSFILE.read_text()
    blocks = stage_blocks(text)
    production = blocks["Smoke test production"].split("post {", 1)[1]
    assert "deployCredentials('production') + mlflowCredentials()" in production
    assert "make rollback DEPLOY_ENV=production" in production
    promote = makefile_recipe("promote-production")
    assert "--deploy-env production --release $(VERSION) --release $(IMAGE):$(IMAGE_TAG)" in promote
    rollback = makefile_recipe("rollback")
    assert "-e mlops_app_rollback_model=$(ROLLBACK_MODEL)" in rollback
    assert "--model-env $(DEPLOY_ENV) --registry-cli" in rollback
    assert re.search(r"^ROLLBACK_MODEL \?= \$\(if \$\(filter production,\$\(DEPLOY_ENV\)\),1,0\)$",
                     MAKEFILE.read_text(), re.M)


def test_make_rollback_passes_the_model_step_only_for_production():
    make = which("make")
    if make is None:
        pytest.skip("make is not installed")

    def dry(*args):
        return subprocess.run([make, "-n", "-o", "setup-dev", "rollback", "BIN=/venv/bin", *args], cwd=PROJECT_ROOT,
                              capture_output=True, text=True, timeout=60).stdout
    assert "--model-env production --registry-cli" in dry("DEPLOY_ENV=production", "DEPLOY_PATH=kubernetes")
    assert "--model-env" not in dry("DEPLOY_ENV=staging", "DEPLOY_PATH=kubernetes")
    assert "mlops_app_rollback_model=1" in dry("DEPLOY_ENV=production", "DEPLOY_PATH=ansible")
    assert "mlops_app_rollback_model=0" in dry("DEPLOY_ENV=staging", "DEPLOY_PATH=ansible")
