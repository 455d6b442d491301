"""The one exception of the secrets package, and how a failed Vault call becomes a clear, redacted message."""

from __future__ import annotations

from collections.abc import Callable


class SecretsUnavailable(RuntimeError):
    """Vault (or the declared fallback) cannot provide secrets. The message never contains a secret value."""


def describe_failure(e: BaseException, timeout: float) -> str:
    """A short, operator-facing reason for ``e`` (hvac and requests errors; URLs and reasons kept short)."""
    import hvac.exceptions as hx
    import requests

    if isinstance(e, requests.exceptions.SSLError):
        detail = "TLS verification failed (set VAULT_CACERT to the CA that signed Vault's certificate)"
    elif isinstance(e, requests.exceptions.Timeout):
        detail = f"no answer within {timeout:g} s"
    elif isinstance(e, requests.exceptions.ConnectionError):
        detail = "cannot connect (is the server running and VAULT_ADDR right?)"
    elif isinstance(e, hx.VaultDown):
        detail = "Vault is sealed or in standby (503)"
    elif isinstance(e, hx.VaultError):
        errors = e.errors if isinstance(e.errors, list) else [e.args[0] if e.args else ""]
        detail = f"{type(e).__name__}: " + "; ".join(str(x) for x in errors if x)
    elif isinstance(e, OSError):
        detail = f"{type(e).__name__}: {e.strerror or e}"
    else:
        detail = type(e).__name__
    return " ".join(detail.split())  # server errors come with newlines and tabs


def unavailable(action: str, addr: str | None, e: BaseException, timeout: float,
                redact: Callable[[str], str]) -> SecretsUnavailable:
    """The exception to raise for a failed ``action`` at ``addr``; hvac's text is redacted."""
    return SecretsUnavailable(redact(f"{action} at {addr} failed: {describe_failure(e, timeout)}"))
