"""Signed models without Vault: the signature format and checks, and the registry's policy per environment.

Real Vault transit signing (rotation, revocation) is tested against OpenBao in tests/infra/vault/test_signing.py;
here a local ed25519 key stands in for transit's (same signature format ``vault:v<N>:<base64>``).
"""

from __future__ import annotations

import base64
import logging

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from app.config import VaultSettings
from app.core.bundle import BundleError
from app.core.signature import SIGNATURE_TAG, SignatureError, load_public_key, signed_message, verify_signature
from app.registry import Registry, RegistryError
from app.signing import ModelVerifier, SigningError, signer_for
from tests.conftest import make_settings
from tests.helpers import fit_bundle, register_bundle

SHA = "ab" * 32
NO_VAULT = VaultSettings(auth="none")


class LocalSigner:
    """Signs like transit does (ed25519 over the message, ``vault:v<N>:`` prefix) with a local key."""

    def __init__(self, version: int = 1):
        self.version = version
        self.private = Ed25519PrivateKey.generate()

    @property
    def public_b64(self) -> str:
        raw = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return base64.b64encode(raw).decode()

    def sign(self, model_name: str, artifact_sha256: str) -> str:
        sig = self.private.sign(signed_message(model_name, artifact_sha256))
        return f"vault:v{self.version}:{base64.b64encode(sig).decode()}"


@pytest.fixture(scope="module")
def bundle(schema, small_frame):
    return fit_bundle(schema, small_frame, classifier="random_forest")


def keys(*signers: LocalSigner) -> dict:
    return {s.version: load_public_key(s.public_b64) for s in signers}


def test_a_good_signature_verifies_and_names_its_key_version():
    s2 = LocalSigner(2)
    assert verify_signature("m", SHA, s2.sign("m", SHA), keys(s2), min_version=1) == 2


@pytest.mark.parametrize(("case", "match"), [
    ("unsigned", "not signed"), ("other digest", "does not match"), ("other model", "does not match"),
    ("below minimum", "below the minimum allowed 2"), ("unknown version", "not among the trusted"),
    ("garbage", "vault:v<N>"), ("other key", "does not match"),
])
def test_bad_signatures_are_refused(case, match):
    s1, s2 = LocalSigner(1), LocalSigner(2)
    trusted, minimum, model, sha = keys(s1, s2), 1, "m", SHA
    sig = s2.sign("m", SHA)
    if case == "unsigned":
        sig = None
    elif case == "other digest":
        sha = "cd" * 32
    elif case == "other model":
        model = "other"
    elif case == "below minimum":
        sig, minimum = s1.sign("m", SHA), 2
    elif case == "unknown version":
        sig = LocalSigner(3).sign("m", SHA)
    elif case == "garbage":
        sig = "vault:v1:not base64!"
    elif case == "other key":
        trusted = {2: load_public_key(LocalSigner(2).public_b64)}
    with pytest.raises(SignatureError, match=match):
        verify_signature(model, sha, sig, trusted, minimum)


def test_public_keys_are_accepted_as_transit_base64_or_pem_and_nothing_else():
    s = LocalSigner()
    pem = s.private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    for text in (s.public_b64, pem):
        load_public_key(text).verify(base64.b64decode(s.sign("m", SHA).split(":")[2]), signed_message("m", SHA))
    with pytest.raises(SignatureError, match="not an ed25519 public key"):
        load_public_key(base64.b64encode(b"short").decode())


def test_registry_signs_at_registration_and_verifies_before_loading(tmp_path, bundle):
    signer = LocalSigner(1)
    settings = make_settings(tmp_path, signing_public_keys={1: signer.public_b64})
    reg = Registry(settings, signer=signer, verifier=ModelVerifier(settings, NO_VAULT))
    v = reg_register(reg, settings, bundle, tmp_path)
    assert reg.get(v).tags[SIGNATURE_TAG].startswith("vault:v1:")
    info, loaded = reg.load(v)
    assert loaded.artifact_sha256 == info.tags["artifact_sha256"]


def test_a_version_whose_tag_digest_was_rewritten_is_refused(tmp_path, bundle):
    """The attacker can rewrite artifact_sha256 but cannot sign the new digest."""
    signer = LocalSigner(1)
    settings = make_settings(tmp_path, signing_public_keys={1: signer.public_b64})
    reg = Registry(settings, signer=signer, verifier=ModelVerifier(settings, NO_VAULT))
    v = reg_register(reg, settings, bundle, tmp_path)
    reg.client.set_model_version_tag(reg.name, v, "artifact_sha256", "ef" * 32)
    with pytest.raises(BundleError, match=f"version {v}: the signature .* does not match"):
        reg.load(v)
    reg.client.delete_model_version_tag(reg.name, v, SIGNATURE_TAG)
    with pytest.raises(BundleError, match="not signed"):
        reg.load(v)


def test_development_without_signing_registers_unsigned_and_loads_with_one_warning(tmp_path, bundle, caplog):
    settings = make_settings(tmp_path)
    reg = Registry(settings, verifier=ModelVerifier(settings, NO_VAULT))
    v = register_bundle(settings, bundle, tmp_path)
    assert SIGNATURE_TAG not in reg.get(v).tags
    with caplog.at_level(logging.WARNING, logger="credit_score.signing"):
        reg.load(v)
    warnings = [r for r in caplog.records if r.name == "credit_score.signing" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "MODEL SIGNATURE NOT VERIFIED" in warnings[0].getMessage()


def test_production_without_signing_refuses_to_register_and_to_load(tmp_path, bundle):
    dev = make_settings(tmp_path)
    v = register_bundle(dev, bundle, tmp_path)  # an unsigned version from before signing existed
    prod = make_settings(tmp_path, env="production")
    with pytest.raises(SigningError, match="production registers signed versions only"):
        signer_for(prod, NO_VAULT)
    reg = Registry(prod, verifier=ModelVerifier(prod, NO_VAULT))
    with pytest.raises(BundleError, match="production refuses unverified models"):
        reg.load(v)
    with pytest.raises(RegistryError, match="not registered: production registers signed versions only"):
        reg_register(Registry(prod), prod, bundle, tmp_path)  # the signer comes from the environment: no Vault
    assert [x.version for x in reg.versions()] == [v]  # nothing was registered


def reg_register(reg: Registry, settings, bundle, tmp_path) -> str:
    import mlflow

    d = tmp_path / f"bundle-{len(list(tmp_path.glob('bundle-*')))}"
    sha = bundle.save(d)
    mlflow.set_tracking_uri(settings.tracking_uri)
    with mlflow.start_run(experiment_id=reg.experiment_id()) as run:
        pass
    return reg.register(d, run.info.run_id, {"artifact_sha256": sha, "classifier": bundle.classifier_name})
