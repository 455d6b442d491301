"""The layers hold: the import-linter contract (.importlinter) passes, catches a violation, and the API imports
no training code (the slim serving image has no imbalanced-learn, matplotlib or shap)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

CONTRACT = PROJECT_ROOT / ".importlinter"
HEAVY = ("imblearn", "matplotlib", "shap")

# A fresh interpreter imports the factory and every module of the API and serving packages, then reports what
# got loaded. (shap may be imported lazily when an exact explanation is asked for: this is about import time.)
PROBE = """
import importlib, json, pkgutil, sys
from app import create_app  # noqa: F401
import app.api
for name in ("app.api", "app.serving"):
    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(package.__path__, name + "."):
        importlib.import_module(info.name)
print(json.dumps(sorted(sys.modules)))
"""


# `lint-imports --no-cache` in the current directory (what `make lint` runs), from this interpreter
LINT = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}


def test_importing_the_api_loads_no_training_code():
    import json

    out = subprocess.run([sys.executable, "-c", PROBE], env=_env(), cwd=PROJECT_ROOT, capture_output=True,
                         text=True, timeout=120, check=True)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "app.api.predict" in loaded and "app.serving.model" in loaded  # the probe imported what it names
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert not heavy, f"importing the API loads {heavy}"
    assert "app.training.report" not in loaded
    training = sorted(m for m in loaded if m == "app.training" or m.startswith("app.training."))
    assert not training, f"importing the API loads training modules {training}"


def test_the_import_contract_holds(capsys):
    from importlinter import api  # noqa: F401  (configures import-linter's adapters)
    from importlinter.application import use_cases

    kept = use_cases.lint_imports(config_filename=str(CONTRACT), cache_dir=None, no_logo=True)
    assert kept, capsys.readouterr().out


def test_the_contract_catches_serving_importing_training(tmp_path):
    """The contract has teeth: a copy of the package where serving imports training breaks it."""
    shutil.copytree(PROJECT_ROOT / "app", tmp_path / "app", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(CONTRACT, tmp_path / ".importlinter")
    model = tmp_path / "app" / "serving" / "model.py"
    model.write_text(model.read_text() + "\nimport app.training.train  # noqa: E402,F401\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", LINT], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "app.serving is not allowed to import app.training" in out.stdout
    assert "app.serving.model -> app.training.train" in out.stdout
