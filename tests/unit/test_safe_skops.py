"""The skops allow-list: exact types per file, no function objects, isinstance after loading (issue 15, item 2)."""

from __future__ import annotations

import json
import zipfile
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
from packaging.version import Version

from app.core.bundle import BundleError, load_bundle
from app.core.features import CreditFeatures
from app.core.safe_skops import FEATURES_ALLOWED, MODEL_ALLOWED, UnsafeSkopsFile, load_skops, schema_types
from app.core.schema import DatasetSchema
from app.core.validate import rename_source_columns
from app.datasets import generate_loan_applications, generate_synthetic
from tests.attack import reseal, tampered_copy, write_exec_pipeline
from tests.helpers import fit_bundle

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def forest_dirs(schema, schema3, small_frame, tmp_path_factory):
    """Bundles as training writes them: binary forest with and without a sampler, three-class forest, xgboost."""
    root = tmp_path_factory.mktemp("skops-bundles")
    loans, loans3 = (DatasetSchema.load(PROJECT / "data" / "schemas" / f"{n}.yaml")
                     for n in ("loan_applications", "loan_applications_3class"))
    made = {
        "rf": fit_bundle(schema, small_frame, classifier="random_forest"),
        "rf-smote": fit_bundle(schema, small_frame, classifier="random_forest", sampler="smote"),
        "rf-3class": fit_bundle(schema3, generate_synthetic(1500, 4, classes=3), classifier="random_forest"),
        "xgb": fit_bundle(schema, small_frame, classifier="xgboost"),
        # string categories, nulls and string labels (a lender's own format) need no type beyond the lists
        "rf-loans-smote": fit_bundle(loans, rename_source_columns(generate_loan_applications(1500, 4), loans),
                                     classifier="random_forest", sampler="smote"),
        "rf-loans-3class": fit_bundle(loans3, rename_source_columns(generate_loan_applications(1500, 5, classes=3),
                                                                    loans3), classifier="random_forest"),
    }
    return {name: (root / name, b.save(root / name)) for name, b in made.items()}


def test_bundles_the_project_writes_use_only_allow_listed_types_and_load(forest_dirs):
    for name, (d, sha) in forest_dirs.items():
        assert {t for _, t in schema_types(d / "features.skops")} <= set().union(*FEATURES_ALLOWED.values())
        if (d / "model.skops").exists():
            assert {t for _, t in schema_types(d / "model.skops")} <= set().union(*MODEL_ALLOWED.values())
        loaded = load_bundle(d, sha)
        assert isinstance(loaded.features, CreditFeatures), name
        if "loans" in name:  # the schema's string categories and labels survive the round trip
            assert "café owner" in loaded.schema.feature("employment_type").categories
            assert loaded.schema.target.bad_class == "charged off"


def test_the_allow_lists_are_exact_names_not_prefixes():
    every = set().union(*FEATURES_ALLOWED.values(), *MODEL_ALLOWED.values())
    assert not any(t.endswith(".") or "*" in t for t in every)
    assert "sklearn.preprocessing._function_transformer.FunctionTransformer" not in every
    assert "sklearn.pipeline.Pipeline" not in every
    assert not {"builtins.exec", "builtins.eval", "functools.partial"} & every
    # per file: the forest's classes are not allowed in features.skops, the transformer not in model.skops
    assert "sklearn.ensemble._forest.RandomForestClassifier" not in set().union(*FEATURES_ALLOWED.values())
    assert "app.core.features.CreditFeatures" not in set().union(*MODEL_ALLOWED.values())


@pytest.mark.parametrize("swap", ["features.skops", "model.skops"])
def test_exec_pipeline_is_refused_before_loading_and_never_runs(forest_dirs, tmp_path, swap):
    marker = tmp_path / "marker"
    sha = tampered_copy(forest_dirs["rf"][0], tmp_path / "evil", marker, swap=swap)
    with pytest.raises(BundleError, match="outside the allow-list") as e:
        load_bundle(tmp_path / "evil", sha)
    assert "builtins.exec" in str(e.value) and "FunctionTransformer" in str(e.value)
    assert not marker.exists()


def test_the_exec_pipeline_is_a_real_weapon_when_skops_trusts_its_types(tmp_path):
    """The control for the test above: loaded the way the old prefix allow-list let it load, it runs."""
    import skops.io as sio

    marker = tmp_path / "marker"
    write_exec_pipeline(tmp_path / "evil.skops", marker)
    obj = sio.load(tmp_path / "evil.skops", trusted=sio.get_untrusted_types(file=tmp_path / "evil.skops"))
    assert not marker.exists()  # loading alone does not run it ...
    obj.transform(np.zeros((1, 3)))
    assert marker.exists()  # ... the first transform, i.e. the next /predict, does


def test_a_function_node_is_refused_whatever_module_it_names(forest_dirs, tmp_path):
    """A FunctionNode naming an allow-listed type name (numpy.ndarray) is still a function object: refused."""
    d = tmp_path / "b"
    import shutil

    shutil.copytree(forest_dirs["rf"][0], d)
    path = d / "features.skops"
    with zipfile.ZipFile(path) as z:
        entries = [(i, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w") as z:
        for info, data in entries:
            if info.filename == "schema.json":
                schema = json.loads(data)
                schema["content"]["content"]["derived"] = {"__class__": "ndarray", "__module__": "numpy",
                                                           "__loader__": "FunctionNode", "__id__": 1,
                                                           "content": {"module_path": "builtins", "function": "exec"}}
                data = json.dumps(schema).encode()
            z.writestr(info, data)
    sha = reseal(d)
    with pytest.raises(BundleError, match=r"numpy.ndarray \(FunctionNode\)"):
        load_bundle(d, sha)


def test_the_wrong_class_in_an_allow_listed_file_is_refused_after_loading(forest_dirs, tmp_path):
    """A forest in features.skops: refused by the allow-list; the transformer where a forest belongs: by isinstance."""
    d = forest_dirs["rf"][0]
    with pytest.raises(UnsafeSkopsFile, match="outside the allow-list"):
        load_skops(d / "model.skops", FEATURES_ALLOWED, (CreditFeatures,))
    with pytest.raises(UnsafeSkopsFile, match="expected RandomForestClassifier"):
        from sklearn.ensemble import RandomForestClassifier

        load_skops(d / "features.skops", {**MODEL_ALLOWED, **FEATURES_ALLOWED}, (RandomForestClassifier,))


def test_a_file_that_is_not_a_skops_zip_is_refused(tmp_path):
    (tmp_path / "x.skops").write_bytes(b"not a zip")
    with pytest.raises(UnsafeSkopsFile, match="not a readable skops file"):
        load_skops(tmp_path / "x.skops", FEATURES_ALLOWED, (CreditFeatures,))


def test_skops_version_floor_is_declared_and_installed():
    """skops < 0.13 has loader advisories (CVE-2024-37065 < 0.10; OperatorFuncNode and MethodNode code execution,
    CVE-2025-54412 / CVE-2025-54413 < 0.12; Card.get_model's silent joblib fallback, CVE-2025-54886 < 0.13)."""
    req = next(ln for ln in (PROJECT / "requirements.txt").read_text().splitlines() if ln.startswith("skops"))
    assert ">=0.13" in req
    assert Version(version("skops")) >= Version("0.13")
