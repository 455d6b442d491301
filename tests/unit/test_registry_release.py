"""Rollback moves the model too (issue 14): a deploy that promotes a model records the champion it replaces, and
rolling that deploy back restores exactly that version on the alias; refused when the alias moved meanwhile.
Against a real local MLflow store (SQLite + file artifacts), through the `credit-score registry` commands the
Makefile, Ansible and bluegreen.py call."""

import json

import pytest

from app.registry import Registry, RegistryError
from app.registry_release import TAG_PREFIX, record, restore_release
from tests.cli_runner import invoke_cli
from tests.helpers import fit_bundle, register_bundle

RELEASE, IMAGE = "1.1.0", "registry.example.com/credit-score:0123456789ab"


@pytest.fixture(scope="module")
def bundle(schema, small_frame):
    return fit_bundle(schema, small_frame)


@pytest.fixture
def env(settings, tmp_path):
    return {"CREDIT_SCORE_MODELS_DIR": str(settings.models_dir), "CREDIT_SCORE_REPORTS_DIR": str(tmp_path / "r")}


def promote(env, version, *releases, deploy_env="production"):
    extra = [a for r in releases for a in ("--release", r)]
    return invoke_cli(["registry", "promote", version, "--alias", "champion", "--expect-challenger", version,
                       "--deploy-env", deploy_env, *extra], env=env)


def rollback(env, release, deploy_env="production"):
    r = invoke_cli(["registry", "rollback", "--deploy-env", deploy_env, "--release", release, "--json"], env=env)
    return r, (json.loads(r.stdout) if r.returncode == 0 else None)


def test_rolling_back_the_deploy_restores_the_champion_it_replaced(settings, bundle, tmp_path, env):
    reg = Registry(settings)
    v1, v2 = (register_bundle(settings, bundle, tmp_path) for _ in range(2))
    reg.promote(v1, "champion")
    reg.promote(v2, "challenger")  # what this build's train-ci registered

    done = promote(env, v2, RELEASE, IMAGE)
    assert done.returncode == 0 and "champion -> v2 (was v1" in done.stdout, done
    assert reg.alias_version("champion") == v2
    rec = record(reg, "production")
    assert rec["previous"] == v1 and rec["promoted"] == v2 and rec["releases"] == [RELEASE, IMAGE], rec
    # a re-run of the promotion keeps the record of the run that moved the alias
    again = promote(env, v2, RELEASE, IMAGE)
    assert again.returncode == 0 and "already is v2" in again.stdout
    assert record(reg, "production")["previous"] == v1

    # another environment's deploy of the same release, and another release here: not this deploy's model
    r, out = rollback(env, RELEASE, deploy_env="staging")
    assert out["action"] == "none" and reg.alias_version("champion") == v2, r
    r, out = rollback(env, "1.0.9")
    assert out["action"] == "none" and "promoted no model" in out["message"], r

    # rollback of the deploy (by the serving image, as bluegreen.py knows it): exactly v1 again
    r, out = rollback(env, IMAGE)
    assert r.returncode == 0 and out == {"action": "restored", "champion": v1, "previous": v1, "promoted": v2,
                                         "message": out["message"]}, r
    assert reg.alias_version("champion") == v1 == reg.get("champion").version
    assert "rolled_back_at" in reg.get(v2).tags and record(reg, "production")["restored_at"]
    # the Ansible path (by its release version) right after: nothing more to do
    r, out = rollback(env, RELEASE)
    assert out["action"] == "already" and reg.alias_version("champion") == v1, r
    # the one-step history rollback does not bounce back to v2 (the restore took v1 off the history)
    with pytest.raises(RegistryError, match="no previous champion"):
        reg.rollback()
    # the human-readable form
    plain = invoke_cli(["registry", "rollback", "--deploy-env", "production", "--release", RELEASE], env=env)
    assert plain.returncode == 0 and "already is v1" in plain.stdout


def test_rollback_refuses_when_the_alias_moved_after_the_deploy(settings, bundle, tmp_path, env):
    reg = Registry(settings)
    v1, v2, v3 = (register_bundle(settings, bundle, tmp_path) for _ in range(3))
    reg.promote(v1, "champion")
    reg.promote(v2, "challenger")
    assert promote(env, v2, RELEASE).returncode == 0
    reg.promote(v3, "champion")  # an A/B verdict (or a person) moved the champion after the deploy
    r, _ = rollback(env, RELEASE)
    assert r.returncode == 1, r
    assert "refusing to restore the champion of production" in r.stderr and "now points at v3" in r.stderr, r
    assert "Traceback" not in r.stderr
    assert reg.alias_version("champion") == v3 and record(reg, "production")["restored_at"] is None
    with pytest.raises(RegistryError, match="now points at v3"):
        restore_release(reg, "production", RELEASE)


def test_refused_promotion_keeps_the_earlier_record_and_first_champion_has_nothing_to_restore(
        settings, bundle, tmp_path, env):
    reg = Registry(settings)
    v1, v2, v3 = (register_bundle(settings, bundle, tmp_path) for _ in range(3))
    reg.promote(v1, "challenger")
    assert promote(env, v1, "1.0.0").returncode == 0  # the first champion: nothing before it
    r, _ = rollback(env, "1.0.0")
    assert r.returncode == 1 and "made v1 the first champion" in r.stderr, r
    assert reg.alias_version("champion") == v1
    reg.promote(v3, "challenger")  # this build registered v2, someone moved the challenger to v3
    refused = promote(env, v2, RELEASE)
    assert refused.returncode == 1 and "challenger alias points at version 3, not 2" in refused.stderr, refused
    assert reg.alias_version("champion") == v1 and record(reg, "production")["releases"] == ["1.0.0"]


@pytest.mark.parametrize("args, fragment", [
    (["promote", "2", "--alias", "champion", "--deploy-env", "production", "--release", "x"], "go together"),
    (["promote", "2", "--alias", "champion", "--expect-challenger", "2", "--deploy-env", "production"],
     "go together"),
    (["rollback", "--release", "1.1.0"], "go together"),
    (["rollback", "--json"], "go together"),
])
def test_bad_arguments(env, args, fragment):
    r = invoke_cli(["registry", *args], env=env)
    assert r.returncode == 2 and fragment in r.stderr, r


def test_bad_names_are_refused_before_anything_changes(settings, bundle, tmp_path, env):
    reg = Registry(settings)
    register_bundle(settings, bundle, tmp_path)
    for deploy_env, release in (("Prod uction", RELEASE), ("production", "1.1.0; rm -rf /")):
        r = invoke_cli(["registry", "rollback", "--deploy-env", deploy_env, "--release", release], env=env)
        assert r.returncode == 1 and ("deploy environment" in r.stderr or "release '" in r.stderr), r
    reg.client.set_registered_model_tag(reg.name, TAG_PREFIX + "production", "{not json")
    r, _ = rollback(env, RELEASE)
    assert r.returncode == 1 and "is not JSON" in r.stderr, r
