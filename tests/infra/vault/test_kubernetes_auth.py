"""Kubernetes service-account auth against the real OpenBao server. There is no Kubernetes here, so Vault's
TokenReview calls go to a fake API server (HTTPS on 127.0.0.1, configured by setup.sh through VAULT_K8S_HOST and
VAULT_K8S_CA_CERT) that vouches for the tokens a test hands it. Everything on the Vault side is real: the
auth method, its config and role from setup.sh, the login, the policy on the token."""

from __future__ import annotations

from unittest import mock

import pytest
from hvac.api.auth_methods import Kubernetes

from app.secrets import SecretsUnavailable, build_provider
from tests.infra.vault import helpers as h

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def login_spy():
    with mock.patch.object(Kubernetes, "login", autospec=True, side_effect=Kubernetes.login) as spy:
        yield spy


def k8s_settings(bao, token_file, **over):
    return h.settings_for(bao, auth="kubernetes", k8s_role="credit-score-app", k8s_token_path=token_file,
                          env="production", **over)


def test_kubernetes_login_reads_the_jwt_file_and_the_secret(bao, k8s_api, app_values, login_spy, tmp_path,
                                                            providers):
    jwt = k8s_api.accept(h.jwt_for("credit-score", "credit-score"))
    token_file = tmp_path / "token"
    token_file.write_text(jwt)
    p = build_provider(k8s_settings(bao, token_file))
    providers.append(p)
    p.check()
    assert p.get("admin_token") == app_values["admin_token"]
    assert login_spy.call_count == 1
    _, kwargs = login_spy.call_args
    assert kwargs == {"role": "credit-score-app", "jwt": jwt, "mount_point": "kubernetes"}
    assert k8s_api.reviews[-1] == jwt  # Vault really asked the (fake) API server about this token
    info = bao.client().auth.token.lookup(p.session.client.token)["data"]
    assert set(info["policies"]) == {"credit-score-app", "default"}
    assert info["meta"]["service_account_namespace"] == "credit-score"


def test_projected_token_rotation_is_used_at_the_next_login(bao, k8s_api, app_values, login_spy, tmp_path,
                                                            providers):
    first = k8s_api.accept(h.jwt_for("credit-score", "credit-score"))
    token_file = tmp_path / "token"
    token_file.write_text(first)
    clock = h.FakeClock()
    p = build_provider(k8s_settings(bao, token_file, ttl=0.1), clock=clock)
    providers.append(p)
    assert p.get("admin_token") == app_values["admin_token"]
    second = k8s_api.accept(h.jwt_for("credit-score", "credit-score"))
    token_file.write_text(second)  # the kubelet refreshes the projected token
    bao.client().auth.token.revoke(p.session.client.token)
    clock.advance(0.2)
    assert p.get("admin_token") == app_values["admin_token"]
    assert [c.kwargs["jwt"] for c in login_spy.call_args_list] == [first, second]


def test_wrong_service_account_is_refused_clearly(bao, k8s_api, login_spy, tmp_path, providers):
    jwt = k8s_api.accept(h.jwt_for("default", "intruder"))
    token_file = tmp_path / "token"
    token_file.write_text(jwt)
    p = build_provider(k8s_settings(bao, token_file))
    providers.append(p)
    with pytest.raises(SecretsUnavailable) as err:
        p.check()
    msg = str(err.value)
    assert "Kubernetes login as role 'credit-score-app'" in msg and bao.addr in msg
    assert jwt not in msg and login_spy.call_count == 1
    assert p.get("admin_token") is None and not p.healthy


def test_token_the_api_server_does_not_vouch_for_is_refused(bao, k8s_api, tmp_path, providers):
    token_file = tmp_path / "token"
    token_file.write_text(h.jwt_for("credit-score", "credit-score"))  # well-formed, but not accepted
    p = build_provider(k8s_settings(bao, token_file))
    providers.append(p)
    with pytest.raises(SecretsUnavailable, match="Kubernetes login"):
        p.check()


def test_missing_service_account_token_file(bao, tmp_path, login_spy, providers):
    p = build_provider(k8s_settings(bao, tmp_path / "absent"))
    providers.append(p)
    with pytest.raises(SecretsUnavailable, match="cannot read the Kubernetes service-account token .*absent"):
        p.check()
    assert login_spy.call_count == 0
