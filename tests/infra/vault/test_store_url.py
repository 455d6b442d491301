"""The commands that read the prediction store (monitor, abtest) take its URL from the secret ``database_url``
in Vault, as the service does, so that the monitor reads the database the serving workers write (issue 14):
against a real OpenBao dev server set up by vault/setup.sh."""

from __future__ import annotations

import pytest

from app.cli.common import export_store_url
from app.secrets import build_provider
from tests.infra.vault import helpers as h

pytestmark = [pytest.mark.integration]


@pytest.fixture
def provider(bao, providers):
    token = h.remember(bao.client().auth.token.create(policies=["credit-score-app"], ttl="1h")["auth"]["client_token"])
    p = build_provider(h.settings_for(bao, auth="token", token=token))
    providers.append(p)
    return p


def test_the_store_url_comes_from_vault(provider, app_values):
    env: dict[str, str] = {}
    assert export_store_url(provider, env)
    assert env == {"CREDIT_SCORE_DATABASE_URL": app_values["database_url"]}


@pytest.mark.parametrize("given", [{"CREDIT_SCORE_STORE_URL": "sqlite:////tmp/x.db"},
                                   {"CREDIT_SCORE_STORE_URL": "none"},
                                   {"CREDIT_SCORE_DATABASE_URL": "postgresql+psycopg://cs@db/cs"}])
def test_an_explicit_url_wins(provider, app_values, given):
    env = dict(given)
    assert not export_store_url(provider, env)
    assert env == given


def test_vault_without_the_key_leaves_the_default(bao, provider, caplog):
    h.put_app_values(bao, {"admin_token": h.fresh("admintoken")})  # no database_url
    env: dict[str, str] = {}
    with caplog.at_level("WARNING", logger="credit_score.cli"):
        assert not export_store_url(provider, env)
    assert env == {}
    assert "database_url unavailable from Vault" in caplog.text


def test_the_store_commands_ask_vault_for_it_and_the_others_do_not(bao, tmp_path, caplog):
    """The CLI's wiring: `monitor` and `abtest` resolve the store URL through Vault before they run (here Vault
    has no database_url: the warning says so), `registry` does not."""
    from tests.cli_runner import invoke_cli

    h.put_app_values(bao, {"admin_token": h.fresh("admintoken")})
    token = h.remember(bao.client().auth.token.create(policies=["credit-score-app"], ttl="1h")["auth"]["client_token"])
    env = {"VAULT_ADDR": bao.addr, "VAULT_TOKEN": token, "CREDIT_SCORE_VAULT_AUTH": "token",
           "CREDIT_SCORE_MODELS_DIR": str(tmp_path / "models"), "CREDIT_SCORE_REPORTS_DIR": str(tmp_path / "reports")}
    warning = "database_url unavailable from Vault"
    for args, asks in ((["monitor", "--dry-run"], True), (["abtest", "report"], True), (["registry", "list"], False)):
        caplog.clear()
        with caplog.at_level("WARNING", logger="credit_score.cli"):
            out = invoke_cli(args, env)
        said = [r.getMessage() for r in caplog.records if r.name == "credit_score.cli"]
        assert any(m.startswith(warning) for m in said) is asks, (args, said, out.stderr[-2000:])
        if asks:
            assert out.returncode == 1  # then it stops: nothing registered
