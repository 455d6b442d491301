"""Keeping secret values out of logs and messages.

A :class:`Redactor` remembers every value a provider has seen (current and rotated-away ones) and replaces
them in text; :func:`redact` does so for every live provider; :class:`SecretRedactingFilter` applies it to log
records before any handler writes them.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any, Protocol

REDACTED = "[REDACTED]"
_MIN_REDACT_LEN = 4  # shorter strings are not treated as secrets (they would mangle every log line)
_SEEN_LIMIT = 256  # values remembered for redaction (current and rotated-away ones)


class Redacts(Protocol):
    def redact(self, text: str) -> str: ...


class Redactor:
    """An ordered, bounded set of secret values and the replacement of them in text.

    :meth:`redact` takes no lock (it may run inside any logging call); :meth:`remember` replaces the tuple of
    values whole.
    """

    def __init__(self, limit: int = _SEEN_LIMIT):
        self._limit = limit
        self._seen: dict[str, None] = {}  # insertion order = age
        self._lock = threading.Lock()  # never held while doing anything else: logging may redact any time
        self._values: tuple[str, ...] = ()  # longest first

    def remember(self, value: str) -> None:
        if len(value) < _MIN_REDACT_LEN or value in self._seen:
            return
        with self._lock:
            self._seen[value] = None
            while len(self._seen) > self._limit:
                self._seen.pop(next(iter(self._seen)))
            self._values = tuple(sorted(self._seen, key=len, reverse=True))

    def redact(self, text: str) -> str:
        if not text:
            return text
        for v in self._values:
            if v in text:
                text = text.replace(v, REDACTED)
        return text


_LIVE: weakref.WeakSet[Any] = weakref.WeakSet()  # every provider alive in this process


def register(provider: Redacts) -> None:
    """Make ``provider``'s values part of the process-wide :func:`redact`."""
    _LIVE.add(provider)


def redact(text: str) -> str:
    """``text`` with every secret value known to any live provider replaced by ``[REDACTED]``."""
    for provider in list(_LIVE):
        text = provider.redact(text)
    return text


class SecretRedactingFilter(logging.Filter):
    """A handler filter that rewrites records so no known secret value reaches the output.

    Attach it to handlers (``handler.addFilter(SecretRedactingFilter(provider))``): the message is formatted
    once, redacted, and stored back without arguments; exception text and string extras are redacted too, as
    are the string values of extras that hold a list of mappings (a record written as several JSON lines, such
    as a batch's predictions). With ``provider=None`` every live provider's values are redacted.
    """

    _STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

    def __init__(self, provider: Redacts | None = None, name: str = ""):
        super().__init__(name)
        self._redact: Callable[[str], str] = provider.redact if provider is not None else redact

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler's own error path
            return True
        record.msg = self._redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
            if record.exc_info:
                # formatters that re-format exc_info themselves (python-json-logger) get the redacted text only
                record.exc_info = None
        for key, value in list(record.__dict__.items()):
            if key in self._STANDARD:
                continue
            if isinstance(value, str):
                setattr(record, key, self._redact(value))
            elif isinstance(value, list) and value and all(isinstance(line, dict) for line in value):
                setattr(record, key, [{k: self._redact(v) if isinstance(v, str) else v for k, v in line.items()}
                                      for line in value])
        return True
