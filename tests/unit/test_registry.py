"""The registry against a real local MLflow store (SQLite + file artifacts) in tmp_path."""

import numpy as np
import pytest

from app.bundle import BundleError, load_bundle
from app.registry import Registry, RegistryError
from tests.conftest import make_settings
from tests.helpers import fit_bundle, register_bundle
from tests.stores import clone_models_dir


@pytest.fixture(scope="module")
def bundle(schema, small_frame):
    return fit_bundle(schema, small_frame)


def test_register_load_roundtrip(settings, bundle, tmp_path, schema, small_frame):
    v = register_bundle(settings, bundle, tmp_path)
    reg = Registry(settings)
    info, loaded = reg.load(v)
    assert info.version == v == "1"
    X = small_frame[schema.feature_names].to_numpy(dtype=float)[:20]
    assert np.allclose(loaded.predict_proba(X), bundle.predict_proba(X))
    assert loaded.threshold == pytest.approx(0.3)
    assert loaded.artifact_sha256 == info.tags["artifact_sha256"]
    assert str(settings.models_dir) in str(reg.bundle_path(v))  # artifacts live under models/


def test_aliases_promote_and_rollback(settings, bundle, tmp_path):
    reg = Registry(settings)
    v1, v2, v3 = (register_bundle(settings, bundle, tmp_path) for _ in range(3))
    reg.promote(v1, "champion")
    reg.promote(v2, "challenger")
    assert reg.alias_version("champion") == v1 and reg.alias_version("challenger") == v2
    reg.promote(v2, "champion")  # challenger becomes champion; the challenger alias is cleared
    assert reg.alias_version("champion") == v2 and reg.alias_version("challenger") is None
    reg.promote(v3, "champion")
    assert reg.rollback() == (v3, v2)
    assert reg.alias_version("champion") == v2
    assert reg.rollback() == (v2, v1)
    with pytest.raises(RegistryError, match="no previous champion"):
        reg.rollback()
    assert "rolled_back_at" in reg.get(v3).tags


def test_failed_gate_version_needs_force(settings, bundle, tmp_path):
    reg = Registry(settings)
    v = register_bundle(settings, bundle, tmp_path, gate_passed=False, gate_reasons="holdout roc_auc too low")
    with pytest.raises(RegistryError, match="failed the quality gate.*roc_auc too low"):
        reg.promote(v, "champion")
    reg.promote(v, "champion", force=True)
    assert reg.alias_version("champion") == v


def test_unknown_version_alias_and_alias_name(settings, bundle, tmp_path):
    reg = Registry(settings)
    register_bundle(settings, bundle, tmp_path)
    with pytest.raises(RegistryError, match="no version '9'"):
        reg.get(9)
    with pytest.raises(RegistryError, match="no alias 'champion'"):
        reg.get("champion")
    with pytest.raises(RegistryError, match="unknown alias"):
        reg.promote("1", "king")


@pytest.fixture(scope="module")
def one_version_store(tmp_path_factory, bundle):
    """A store with one registered version, registered once for the module."""
    tmp = tmp_path_factory.mktemp("one-version")
    settings = make_settings(tmp)
    return settings.models_dir, register_bundle(settings, bundle, tmp)


@pytest.fixture
def registered(one_version_store, tmp_path):
    """(settings, version) of this test's own copy of the one-version store."""
    src, version = one_version_store
    clone_models_dir(src, tmp_path / "models")
    settings = make_settings(tmp_path)
    # the copy's own artifacts, not the original's
    assert Registry(settings).bundle_path(version).is_relative_to(settings.models_dir.resolve())
    return settings, version


@pytest.mark.parametrize("victim", ["model.ubj", "features.skops", "bundle.json", "MANIFEST.sha256"])
def test_tampered_artifact_is_refused(registered, victim):
    settings, v = registered
    reg = Registry(settings)
    reg.load(v)  # intact before the change
    path = reg.bundle_path(v) / victim
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="refusing to load"):
        reg.load(v)


def test_bundle_with_wrong_expected_hash(bundle, tmp_path):
    sha = bundle.save(tmp_path / "b")
    assert load_bundle(tmp_path / "b", sha).artifact_sha256 == sha
    with pytest.raises(BundleError, match="does not match the registered"):
        load_bundle(tmp_path / "b", "0" * 64)


def test_random_forest_bundle_roundtrip(schema, small_frame, tmp_path):
    b = fit_bundle(schema, small_frame, classifier="random_forest", sampler="smote")
    sha = b.save(tmp_path / "rf")
    assert (tmp_path / "rf" / "model.skops").exists()
    X = small_frame[schema.feature_names].to_numpy(dtype=float)[:10]
    assert np.allclose(load_bundle(tmp_path / "rf", sha).predict_proba(X), b.predict_proba(X))


def test_release_promotion_takes_only_the_version_the_build_registered(settings, bundle, tmp_path):
    """`registry promote N --alias champion --expect-challenger N` (make promote-production): N becomes champion
    only while challenger still points at N; a challenger moved meanwhile is refused and nothing changes."""
    from tests.cli_runner import invoke_cli

    reg = Registry(settings)
    v1, v2, v3 = (register_bundle(settings, bundle, tmp_path) for _ in range(3))
    reg.promote(v1, "champion")
    reg.promote(v2, "challenger")  # this build registered v2 ...
    reg.promote(v3, "challenger")  # ... and someone moved the alias to v3 before the approval
    env = {"CREDIT_SCORE_MODELS_DIR": str(settings.models_dir), "CREDIT_SCORE_REPORTS_DIR": str(tmp_path / "r")}
    moved = invoke_cli(["registry", "promote", v2, "--alias", "champion", "--expect-challenger", v2], env=env)
    assert moved.returncode != 0 and "challenger alias points at version 3, not 2" in moved.stderr, moved
    assert reg.alias_version("champion") == v1 and reg.alias_version("challenger") == v3
    with pytest.raises(RegistryError, match="points at no version"):
        reg.client.delete_registered_model_alias(reg.name, "challenger")
        reg.promote_registered(v2, v2)
    reg.promote(v2, "challenger")
    ok = invoke_cli(["registry", "promote", v2, "--alias", "champion", "--expect-challenger", v2], env=env)
    assert ok.returncode == 0 and "champion -> v2" in ok.stdout, ok
    assert reg.alias_version("champion") == v2 and reg.alias_version("challenger") is None
    again = invoke_cli(["registry", "promote", v2, "--alias", "champion", "--expect-challenger", v2], env=env)
    assert again.returncode == 0 and "already is v2" in again.stdout  # a re-run of the stage is harmless
    for bad in (["--alias", "challenger", "--expect-challenger", v2], ["--alias", "champion", "--force",
                                                                       "--expect-challenger", v2]):
        r = invoke_cli(["registry", "promote", v2, *bad], env=env)
        assert r.returncode == 2 and "--expect-challenger goes with" in r.stderr, r
