"""The signature of a registered bundle: what is signed, and its verification with a public key.

A registered version carries ``artifact_sha256`` (the sha256 of the bundle's manifest, which lists the sha256
of every file) and ``artifact_signature``: an ed25519 signature in Vault transit's format ``vault:v<N>:<base64>``
where ``N`` is the key version that signed. The signed message binds the digest to the registered model's name
and to this format (:func:`signed_message`), so a signature cannot be replayed onto another model or read as
anything else. Verification needs only the public key of version ``N``; nothing here talks to Vault.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping

from app.core.bundle import BundleError

SIGNATURE_TAG = "artifact_signature"
_DOMAIN = b"credit-score-mlops/model-bundle/v1\n"
_SIG = re.compile(r"vault:v([1-9][0-9]{0,8}):([A-Za-z0-9+/=]{1,200})")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class SignatureError(BundleError):
    """A version is unsigned, signed by a key version no longer allowed, or its signature does not verify."""


def signed_message(model_name: str, artifact_sha256: str) -> bytes:
    """The bytes that are signed for ``artifact_sha256`` of model ``model_name``."""
    if not _SHA256.fullmatch(artifact_sha256 or ""):
        raise SignatureError("the artifact sha256 is not a lowercase hex sha256")
    return _DOMAIN + model_name.encode("utf-8") + b"\n" + artifact_sha256.encode("ascii")


def parse_signature(signature: str) -> tuple[int, bytes]:
    """``vault:v<N>:<base64>`` -> (N, raw signature bytes)."""
    m = _SIG.fullmatch(signature or "")
    if m is None:
        raise SignatureError("the signature is not in transit's vault:v<N>:<base64> form")
    try:
        raw = base64.b64decode(m.group(2), validate=True)
    except binascii.Error:
        raise SignatureError("the signature is not valid base64") from None
    return int(m.group(1)), raw


def load_public_key(text: str):
    """An ed25519 public key from base64 of its 32 raw bytes (what transit returns) or from PEM."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = load_pem_public_key(text.encode("ascii"))
        else:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error, UnicodeEncodeError) as e:
        raise SignatureError(f"not an ed25519 public key: {type(e).__name__}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(f"not an ed25519 public key: {type(key).__name__}")
    return key


def verify_signature(model_name: str, artifact_sha256: str, signature: str | None,
                     public_keys: Mapping[int, object], min_version: int) -> int:
    """Verify ``signature`` over ``artifact_sha256``; returns the key version that signed.

    ``public_keys`` maps key versions to ed25519 public keys (:func:`load_public_key`). Raises
    :class:`SignatureError` when the version is unsigned, its key version is below ``min_version`` or unknown,
    or the signature does not verify.
    """
    from cryptography.exceptions import InvalidSignature

    if not signature:
        raise SignatureError("the version is not signed (no artifact_signature tag)")
    key_version, raw = parse_signature(signature)
    if key_version < min_version:
        raise SignatureError(f"signed with key version {key_version}, below the minimum allowed {min_version} "
                             f"(revoked)")
    key = public_keys.get(key_version)
    if key is None:
        raise SignatureError(f"signed with key version {key_version}, which is not among the trusted public keys "
                             f"{sorted(public_keys)}")
    try:
        key.verify(raw, signed_message(model_name, artifact_sha256))
    except InvalidSignature:
        raise SignatureError(f"the signature (key version {key_version}) does not match this bundle") from None
    return key_version
