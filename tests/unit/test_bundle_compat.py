"""Registered bundles keep loading across the move of the feature transformer into the core layer.

skops records the module a class was defined in when it saves an object. Bundles saved before the core layer
record ``app.training.features.CreditFeatures``, bundles saved since ``app.core.features.CreditFeatures``; both
must verify and load, and give the predictions they gave when they were saved.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from app.core.bundle import BundleError, load_bundle
from app.core.features import CreditFeatures
from tests.helpers import fit_bundle

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PRE_CORE = FIXTURES / "bundle_pre_core"  # saved by the release before app/core existed
OLD_PATH, NEW_PATH = "app.training.features", "app.core.features"


def recorded_modules(skops_file: Path) -> set[str]:
    """Every ``__module__`` a skops file records (its schema.json), builtins and numpy left out."""
    with zipfile.ZipFile(skops_file) as z:
        text = z.read("schema.json").decode()
    found: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("__module__"), str):
                found.add(node["__module__"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(json.loads(text))
    return {m for m in found if m not in ("builtins", "numpy")}


def rewrite_recorded_module(bundle_dir: Path, old: str, new: str) -> str:
    """Change the module path recorded in ``features.skops`` and re-seal the manifest; returns the new sha."""
    path = bundle_dir / "features.skops"
    with zipfile.ZipFile(path) as z:
        entries = [(info, z.read(info.filename)) for info in z.infolist()]
    with zipfile.ZipFile(path, "w") as z:
        for info, data in entries:
            if info.filename == "schema.json":
                data = data.replace(f'"{old}"'.encode(), f'"{new}"'.encode())
            z.writestr(info, data)
    names = [line.partition("  ")[2] for line in (bundle_dir / "MANIFEST.sha256").read_text().splitlines()]
    manifest = "".join(f"{hashlib.sha256((bundle_dir / n).read_bytes()).hexdigest()}  {n}\n" for n in names)
    (bundle_dir / "MANIFEST.sha256").write_text(manifest)
    return hashlib.sha256(manifest.encode()).hexdigest()


@pytest.fixture(scope="module")
def bundle(schema, small_frame):
    return fit_bundle(schema, small_frame)


@pytest.fixture(scope="module")
def rows(schema, small_frame):
    return small_frame[schema.feature_names].to_numpy(dtype=float)[:50]


def test_bundle_saved_before_the_core_layer_loads_with_its_predictions():
    expected = json.loads((FIXTURES / "bundle_pre_core_expected.json").read_text())
    assert recorded_modules(PRE_CORE / "features.skops") == {OLD_PATH}  # the fixture is what it claims
    loaded = load_bundle(PRE_CORE, expected_sha256=expected["artifact_sha256"])
    assert type(loaded.features) is CreditFeatures
    X = np.asarray(expected["rows"])  # noqa: N806
    assert np.allclose(loaded.predict_proba(X), expected["proba"], atol=1e-6)


def test_bundle_saved_by_this_release_records_the_core_path_and_loads(bundle, rows, tmp_path):
    sha = bundle.save(tmp_path / "b")
    assert recorded_modules(tmp_path / "b" / "features.skops") == {NEW_PATH}
    loaded = load_bundle(tmp_path / "b", expected_sha256=sha)
    assert type(loaded.features) is CreditFeatures
    assert np.allclose(loaded.predict_proba(rows), bundle.predict_proba(rows))
    assert loaded.threshold == bundle.threshold and loaded.schema.sha256 == bundle.schema.sha256


def test_bundle_recording_the_old_training_path_loads(bundle, rows, tmp_path):
    bundle.save(tmp_path / "b")
    sha = rewrite_recorded_module(tmp_path / "b", NEW_PATH, OLD_PATH)
    assert recorded_modules(tmp_path / "b" / "features.skops") == {OLD_PATH}
    loaded = load_bundle(tmp_path / "b", expected_sha256=sha)
    assert type(loaded.features) is CreditFeatures
    assert np.allclose(loaded.predict_proba(rows), bundle.predict_proba(rows))


def test_a_class_outside_the_allow_list_is_still_refused(bundle, tmp_path):
    """Widening the allow-list to the core path did not open it to the rest of the package."""
    bundle.save(tmp_path / "b")
    sha = rewrite_recorded_module(tmp_path / "b", NEW_PATH, "app.training.train")
    with pytest.raises(BundleError, match="outside the allow-list"):
        load_bundle(tmp_path / "b", expected_sha256=sha)

