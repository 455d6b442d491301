"""Model signing against real OpenBao transit, set up by vault/setup.sh (issue 15, acceptance 2).

The training identity (AppRole ``credit-score-train``, policy ``credit-score-signer``) signs; the serving
identity (AppRole ``credit-score-app``) reads only the public keys and verifies with them; serving can neither
sign nor export nor rotate. Rotation keeps older signatures valid while their key version is allowed;
raising the minimum version (in Vault or in our configuration) revokes them.
"""

from __future__ import annotations

import hvac
import pytest

from app.config import DEFAULT_SIGNING_KEY
from app.core.signature import SignatureError
from app.signing import KeysUnavailable, ModelVerifier, SigningError, TransitSigner
from tests.conftest import make_settings
from tests.infra.vault import helpers as h

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL = "credit-score"
SHA_A, SHA_B = "a1" * 32, "b2" * 32


def approle_settings(server: h.BaoServer, role: str):
    role_id, secret_id = h.approle_credentials(server, role)
    return h.settings_for(server, role_id=role_id, secret_id=secret_id)


def denied(fn, *args, **kw) -> bool:
    try:
        fn(*args, **kw)
    except hvac.exceptions.Forbidden:
        return True
    return False


@pytest.fixture
def signer(bao):
    s = TransitSigner(approle_settings(bao, "credit-score-train"), "transit", DEFAULT_SIGNING_KEY)
    yield s
    s.close()


@pytest.fixture
def verifier_for(bao, tmp_path):
    made = []

    def make(**over) -> ModelVerifier:
        v = ModelVerifier(make_settings(tmp_path, **over), approle_settings(bao, "credit-score-app"))
        made.append(v)
        return v

    yield make
    for v in made:
        v.close()


def test_setup_creates_a_non_exportable_ed25519_key(bao):
    key = bao.client().secrets.transit.read_key(name=DEFAULT_SIGNING_KEY)["data"]
    assert key["type"] == "ed25519"
    assert key["exportable"] is False and key["allow_plaintext_backup"] is False
    assert all("public_key" in k for k in key["keys"].values())


def test_training_signs_and_serving_verifies_with_the_public_key_only(bao, signer, verifier_for):
    sig = signer.sign(MODEL, SHA_A)
    assert sig.startswith("vault:v")
    verifier = verifier_for()
    assert verifier.verify(MODEL, "1", SHA_A, sig) >= 1
    with pytest.raises(SignatureError, match="does not match"):
        verifier.verify(MODEL, "2", SHA_B, sig)  # the signature of another bundle
    with pytest.raises(SignatureError, match="not signed"):
        verifier.verify(MODEL, "2", SHA_B, None)


def test_serving_cannot_sign_export_or_change_the_key(bao):
    c = bao.client("unused")
    c.auth.approle.login(*h.approle_credentials(bao, "credit-score-app"))
    h.remember(c.token)
    transit = c.secrets.transit
    assert c.secrets.transit.read_key(name=DEFAULT_SIGNING_KEY)["data"]["type"] == "ed25519"  # public keys: yes
    assert denied(transit.sign_data, name=DEFAULT_SIGNING_KEY, hash_input="eA==")
    assert denied(transit.export_key, name=DEFAULT_SIGNING_KEY, key_type="signing-key")
    assert denied(transit.rotate_key, name=DEFAULT_SIGNING_KEY)
    assert denied(transit.update_key_configuration, name=DEFAULT_SIGNING_KEY, min_decryption_version=1)
    # and the signer can sign, but neither export nor rotate
    s = bao.client("unused")
    s.auth.approle.login(*h.approle_credentials(bao, "credit-score-train"))
    h.remember(s.token)
    assert s.secrets.transit.sign_data(name=DEFAULT_SIGNING_KEY, hash_input="eA==")["data"]["signature"]
    assert denied(s.secrets.transit.export_key, name=DEFAULT_SIGNING_KEY, key_type="signing-key")
    assert denied(s.secrets.transit.rotate_key, name=DEFAULT_SIGNING_KEY)


def test_a_signer_without_the_signer_policy_cannot_register_a_signature(bao):
    s = TransitSigner(approle_settings(bao, "credit-score-app"), "transit", DEFAULT_SIGNING_KEY)
    try:
        with pytest.raises(SigningError, match="Forbidden"):
            s.sign(MODEL, SHA_A)
    finally:
        s.close()


def test_rotation_keeps_old_signatures_valid_until_their_version_is_revoked(bao, signer, verifier_for):
    """Runs last in this module: it leaves the shared key rotated with its first versions revoked."""
    admin = bao.client().secrets.transit
    old = signer.sign(MODEL, SHA_A)
    old_version = int(old.split(":")[1][1:])
    admin.rotate_key(name=DEFAULT_SIGNING_KEY)
    new = signer.sign(MODEL, SHA_B)
    new_version = int(new.split(":")[1][1:])
    assert new_version == old_version + 1
    verifier = verifier_for()
    assert verifier.verify(MODEL, "1", SHA_A, old) == old_version  # rotated: the old version still verifies
    assert verifier.verify(MODEL, "2", SHA_B, new) == new_version

    # revoked by our configuration: the minimum key version raised
    raised = verifier_for(signing_min_version=new_version)
    with pytest.raises(SignatureError, match=f"key version {old_version}, below the minimum allowed {new_version}"):
        raised.verify(MODEL, "1", SHA_A, old)
    assert raised.verify(MODEL, "2", SHA_B, new) == new_version

    # revoked in Vault: min_decryption_version raised; a verifier with default settings follows it
    admin.update_key_configuration(name=DEFAULT_SIGNING_KEY, min_decryption_version=new_version)
    with pytest.raises(SignatureError, match="revoked"):
        verifier.verify(MODEL, "1", SHA_A, old)
    assert verifier.verify(MODEL, "2", SHA_B, new) == new_version

    # pinned public keys (no Vault read at load time) obey the configured minimum too
    pub = bao.client().secrets.transit.read_key(name=DEFAULT_SIGNING_KEY)["data"]["keys"]
    pinned = verifier_for(signing_public_keys={int(v): k["public_key"] for v, k in pub.items()},
                          signing_min_version=new_version)
    assert pinned.verify(MODEL, "2", SHA_B, new) == new_version
    with pytest.raises(SignatureError):
        pinned.verify(MODEL, "1", SHA_A, old)


def test_setup_with_another_transit_mount_and_key_name_is_idempotent(bao_factory):
    server = bao_factory("signing-paths")
    env = {"CREDIT_SCORE_SIGNING_MOUNT": "sig", "CREDIT_SCORE_SIGNING_KEY": "models-2"}
    first = h.run_setup(server.addr, server.root_token, server.workdir / "setup.log", env)
    second = h.run_setup(server.addr, server.root_token, server.workdir / "setup.log", env)
    assert "signing key sig/keys/models-2: created (ed25519)" in first.stdout
    assert "signing key sig/keys/models-2: exists (ed25519), left unchanged" in second.stdout
    root = server.client()
    assert root.secrets.transit.read_key(name="models-2", mount_point="sig")["data"]["type"] == "ed25519"
    app_rules = root.sys.read_policy("credit-score-app")["data"]["rules"]
    signer_rules = root.sys.read_policy("credit-score-signer")["data"]["rules"]
    assert 'path "sig/keys/models-2"' in app_rules and 'path "sig/sign/models-2"' in app_rules
    assert 'path "sig/export/+/models-2"' in app_rules
    assert 'path "sig/sign/models-2"' in signer_rules and 'path "transit/' not in signer_rules
    signer = TransitSigner(approle_settings(server, "credit-score-train"), "sig", "models-2")
    try:
        assert signer.sign(MODEL, SHA_A).startswith("vault:v1:")
    finally:
        signer.close()


def test_keys_read_once_stay_in_use_while_vault_is_down_and_none_read_is_unavailable(bao_factory, tmp_path):
    server = bao_factory("signing-outage")
    h.run_setup(server.addr, server.root_token, server.workdir / "setup.log")
    signer = TransitSigner(approle_settings(server, "credit-score-train"), "transit", DEFAULT_SIGNING_KEY)
    sig = signer.sign(MODEL, SHA_A)
    signer.close()
    settings = make_settings(tmp_path)
    warm = ModelVerifier(settings, approle_settings(server, "credit-score-app"))
    cold = ModelVerifier(settings, approle_settings(server, "credit-score-app"))
    assert warm.verify(MODEL, "1", SHA_A, sig) == 1
    server.stop()
    try:
        assert warm.verify(MODEL, "1", SHA_A, sig) == 1  # the public keys read before
        with pytest.raises(SignatureError, match="does not match"):
            warm.verify(MODEL, "2", SHA_B, sig)  # ... still refuse what they do not sign
        with pytest.raises(KeysUnavailable, match="cannot read the signing public keys"):
            cold.verify(MODEL, "1", SHA_A, sig)  # never read: refused (fail closed), not trusted
    finally:
        warm.close()
        cold.close()
