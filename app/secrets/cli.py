"""``python -m app.secrets check``: contact Vault as the service would; print the status (names only)."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable

from pydantic import ValidationError

from app.config.vault import VaultSettings
from app.secrets.errors import SecretsUnavailable
from app.secrets.fallback import SECRET_NAMES
from app.secrets.provider import SecretProvider
from app.secrets.redaction import SecretRedactingFilter


def main(argv: Iterable[str] | None = None) -> int:
    """``check``: contact Vault as the service would; print the status (names only, never values).

    Exit 0: usable; 1: unavailable in production (fail closed); 2: invalid settings.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args not in ([], ["check"]):
        print("usage: python -m app.secrets [check]", file=sys.stderr)
        return 2
    logging.basicConfig(level=os.environ.get("CREDIT_SCORE_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = VaultSettings.from_env()
    except (ValidationError, ValueError) as e:
        print(f"error: invalid Vault settings: {e}", file=sys.stderr)
        return 2
    provider = SecretProvider(settings)
    for handler in logging.getLogger().handlers:
        handler.addFilter(SecretRedactingFilter(provider))
    try:
        provider.check()
        status = provider.status()
        status["present"] = {n: provider.get(n) is not None for n in SECRET_NAMES}
        print(json.dumps(status, indent=2))
        return 0
    except SecretsUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        provider.close()
