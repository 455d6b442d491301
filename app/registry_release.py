"""Which model a deploy promoted, so that rolling that deploy back moves the champion alias back too.

A release that promotes a model (``make promote-production``: ``credit-score registry promote V --alias champion
--expect-challenger V --deploy-env production --release R ...``) first records, on the registered model, the
champion it is about to replace: the tag ``release_promotion.<environment>`` holds ``{"releases": [...],
"previous": "1", "promoted": "2", "at": ...}``. The release ids are what each rollback path knows of the release
it rolls back: the Ansible release (``mlops_app_version``) on VMs, the serving image on Kubernetes.

Rolling that release back (Ansible ``rollback.yml``, ``kubernetes/scripts/bluegreen.py rollback``, Jenkins'
automatic rollback through ``make rollback``) calls :func:`restore_release` before traffic moves: the champion
alias goes back to exactly the recorded previous version, while it still points at the version this release
promoted. If it moved meanwhile (another release, an A/B promotion, a person), nothing is changed and the
refusal says where it points. A release that promoted no model leaves the alias alone.

MLflow has no compare-and-set on aliases: the check and the move are two calls, so two releases (or a release
and a person) must not move the champion of one environment at the same time.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass

from app.registry import CHAMPION, Registry, RegistryError, RegistryNotFound

TAG_PREFIX = "release_promotion."
_ENV = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
_RELEASE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,254}$")


@dataclass
class Outcome:
    """What a restore did: ``restored`` (moved back), ``already`` (the alias already is the previous champion)
    or ``none`` (this release promoted no model); champion is where the alias points afterwards."""

    action: str
    champion: str | None
    previous: str | None = None
    promoted: str | None = None
    message: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def check_names(environment: str, releases: list[str] | tuple[str, ...]) -> None:
    if not _ENV.match(environment or ""):
        raise RegistryError(f"deploy environment {environment!r}: lower-case letters, digits, - and _ "
                            "(e.g. production)")
    if not releases:
        raise RegistryError("name the release (--release) whose deploy promotes the model")
    for r in releases:
        if not _RELEASE.match(r or ""):
            raise RegistryError(f"release {r!r}: letters, digits and . _ : / @ + - (a version or an image)")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def record(reg: Registry, environment: str) -> dict | None:
    """The last promotion a release made in ``environment`` (None when there is none)."""
    rm = reg._registered()
    raw = (rm.tags or {}).get(TAG_PREFIX + environment) if rm is not None else None
    if not raw:
        return None
    try:
        rec = json.loads(raw)
    except ValueError:
        raise RegistryError(f"the registered model's tag {TAG_PREFIX + environment} is not JSON; fix or delete "
                            "it (MLflow UI, registered model tags)") from None
    return rec if isinstance(rec, dict) else None


def _write(reg: Registry, environment: str, rec: dict | None) -> None:
    key = TAG_PREFIX + environment
    if rec is None:
        reg.client.delete_registered_model_tag(reg.name, key)
    else:
        reg.client.set_registered_model_tag(reg.name, key, json.dumps(rec, sort_keys=True))


def promote_for_release(reg: Registry, version: str | int, expect_challenger: str | int, environment: str,
                        releases: list[str]) -> tuple[bool, str | None]:
    """:meth:`Registry.promote_registered` that first records the champion it replaces for ``releases`` in
    ``environment``. Returns (moved, previous champion). A re-run (``version`` already champion) keeps the record
    of the run that moved it."""
    check_names(environment, releases)
    version = str(version)
    previous = reg.alias_version(CHAMPION)
    old = record(reg, environment)
    if previous == version:
        return False, (old or {}).get("previous") if (old or {}).get("promoted") == version else None
    _write(reg, environment, {"releases": list(dict.fromkeys(releases)), "previous": previous, "promoted": version,
                              "at": _now(), "restored_at": None})
    try:
        reg.promote_registered(version, expect_challenger)
    except Exception:
        _write(reg, environment, old)  # nothing moved: the record of the earlier release stands
        raise
    return True, previous


def restore_release(reg: Registry, environment: str, release: str) -> Outcome:
    """Undo the model promotion of ``release`` in ``environment`` (see the module's docstring)."""
    check_names(environment, [release])
    rec = record(reg, environment)
    current = reg.alias_version(CHAMPION)
    if rec is None or release not in (rec.get("releases") or []):
        return Outcome("none", current, message=f"release {release} promoted no model in {environment}: the "
                                                f"champion stays {_v(current)}")
    previous, promoted = rec.get("previous"), str(rec.get("promoted"))
    if previous is not None and current == str(previous):
        return Outcome("already", current, previous, promoted,
                       f"the champion already is v{previous}, the one release {release} replaced in {environment}")
    if current != promoted:
        raise RegistryError(
            f"refusing to restore the champion of {environment}: release {release} promoted v{promoted} "
            f"(replacing {_v(previous)}), but the champion alias now points at {_v(current)}; it moved since "
            "the deploy, so nothing was changed. Move it yourself if needed: credit-score registry promote "
            "<version> --alias champion")
    if previous is None:
        raise RegistryError(f"refusing to restore the champion of {environment}: release {release} made "
                            f"v{promoted} the first champion, there is no previous one; the alias stays on "
                            f"v{promoted}")
    try:
        reg.get(str(previous))
    except RegistryNotFound:
        raise RegistryError(f"cannot restore the champion of {environment}: v{previous}, the champion release "
                            f"{release} replaced, no longer exists; the alias stays on v{promoted}") from None
    reg.client.set_registered_model_alias(reg.name, CHAMPION, str(previous))
    history = reg._history()  # the promotion pushed the previous champion: it is champion again
    if history and history[-1] == str(previous):
        reg.client.set_registered_model_tag(reg.name, "champion_history", json.dumps(history[:-1]))
    reg.client.set_model_version_tag(reg.name, promoted, "rolled_back_at", _now())
    _write(reg, environment, {**rec, "restored_at": _now()})
    return Outcome("restored", str(previous), str(previous), promoted,
                   f"champion: v{promoted} -> v{previous} (rolling back release {release} in {environment})")


def _v(version: str | None) -> str:
    return "no version" if version is None else f"v{version}"
