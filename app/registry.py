"""The model registry on MLflow (tracking + Model Registry).

Embedded default: a SQLite store and local artifacts under ``models/``; any tracking server through MLflow's
own ``MLFLOW_TRACKING_URI``. Each version is an MLflow pyfunc model (models-from-code, no pickle) whose
artifacts hold our bundle (:mod:`app.core.bundle`); the version carries lineage tags, among them the bundle's
``artifact_sha256``, and its signature ``artifact_signature`` (:mod:`app.signing`: Vault transit signs at
registration, serving verifies with the public key), both checked before anything is downloaded or loaded.

Aliases: ``champion`` and ``challenger``. Every change of champion pushes the previous one onto the
registered model's ``champion_history`` tag, so ``rollback`` can move champion back one step.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.config import Settings
from app.core.bundle import BundleError, ModelBundle, load_bundle, verify_bundle
from app.core.signature import SIGNATURE_TAG
from app.signing import ModelVerifier, SigningError, signer_for

log = logging.getLogger("credit_score.registry")

CHAMPION = "champion"
CHALLENGER = "challenger"
ALIASES = (CHAMPION, CHALLENGER)
PYFUNC_CODE = Path(__file__).with_name("mlflow_pyfunc.py")
BUNDLE_KEY = "bundle"


class RegistryError(RuntimeError):
    """A registry operation cannot be done (unknown version, refused promotion, nothing to roll back)."""


class RegistryNotFound(RegistryError):
    """No such version, alias or registered model."""


# MLflow's error codes for a name, version or alias that does not exist (an unknown alias is a parameter error)
_NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


@dataclass
class VersionInfo:
    name: str
    version: str
    aliases: list[str]
    tags: dict[str, str]
    run_id: str | None
    created_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "aliases": self.aliases, "tags": self.tags,
                "run_id": self.run_id,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created_ms / 1000))}


class Registry:
    """Register, list, promote, roll back and load model versions of one registered model."""

    def __init__(self, settings: Settings, signer=None, verifier: ModelVerifier | None = None):
        self.settings = settings
        self.name = settings.model_name
        self._client = None
        self._signer = signer  # app.signing.TransitSigner; built from the environment on first registration
        self._verifier = verifier

    @property
    def verifier(self) -> ModelVerifier:
        if self._verifier is None:
            self._verifier = ModelVerifier(self.settings)
        return self._verifier

    def sign(self, artifact_sha256: str) -> str | None:
        """The transit signature of a bundle digest; None in development without Vault (logged)."""
        if self._signer is None:
            self._signer = signer_for(self.settings)
        if self._signer is None:
            return None
        return self._signer.sign(self.name, artifact_sha256)

    # ---- plumbing ------------------------------------------------------------------------------------
    @property
    def client(self):
        if self._client is None:
            from mlflow import MlflowClient

            if self.settings.tracking_uri.startswith("sqlite:///"):
                Path(self.settings.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True,
                                                                                        exist_ok=True)
            self._client = MlflowClient(tracking_uri=self.settings.tracking_uri,
                                        registry_uri=self.settings.registry_uri)
        return self._client

    def experiment_id(self) -> str:
        exp = self.client.get_experiment_by_name(self.settings.experiment)
        if exp is not None:
            return exp.experiment_id
        local = self.settings.tracking_uri.startswith("sqlite:")
        return self.client.create_experiment(self.settings.experiment,
                                             artifact_location=self.settings.artifact_root if local else None)

    def _registered(self):
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_registered_model(self.name)
        except MlflowException:
            return None

    # ---- queries -------------------------------------------------------------------------------------
    def versions(self) -> list[VersionInfo]:
        rm = self._registered()
        if rm is None:
            return []
        # search results carry no aliases; the registered model has the alias -> version map
        by_version: dict[str, list[str]] = {}
        for alias, version in (rm.aliases or {}).items():
            by_version.setdefault(str(version), []).append(alias)
        found = self.client.search_model_versions(f"name = '{self.name}'")
        infos = [self._info(mv) for mv in found]
        for info in infos:
            info.aliases = sorted(by_version.get(info.version, []))
        return sorted(infos, key=lambda v: int(v.version))

    def get(self, ref: str | int) -> VersionInfo:
        """A version by number or alias."""
        from mlflow.exceptions import MlflowException

        ref = str(ref)
        try:
            if ref.isdigit():
                mv = self.client.get_model_version(self.name, ref)
            else:
                mv = self.client.get_model_version_by_alias(self.name, ref)
        except MlflowException as e:
            if e.error_code not in _NOT_FOUND:  # unreachable, refused credentials, a server error: not "no such"
                raise RegistryError(f"the model registry cannot be read ({e.error_code})") from None
            what = "version" if ref.isdigit() else "alias"
            raise RegistryNotFound(f"model {self.name!r} has no {what} {ref!r}") from None
        return self._info(mv)

    def datasets(self, run_id: str | None) -> list[dict[str, Any]]:
        """The training data's lineage of a version's run: the MLflow datasets it logged (app/training/lineage.py),
        each with its context and tags; [] for a run that logged none."""
        from mlflow.exceptions import MlflowException

        if not run_id:
            return []
        try:
            run = self.client.get_run(run_id)
        except MlflowException as e:
            raise RegistryError(f"the run {run_id} cannot be read ({e.error_code})") from None
        out = []
        for di in (run.inputs.dataset_inputs if run.inputs else []) or []:
            tags = {t.key: t.value for t in di.tags or []}
            d = di.dataset
            out.append({"name": d.name, "context": tags.pop("mlflow.data.context", None), "digest": d.digest,
                        "source_type": d.source_type, "source": _json_or_text(d.source), "tags": tags,
                        "profile": _json_or_text(d.profile)})
        return out

    def alias_version(self, alias: str) -> str | None:
        """The version an alias points at; None when it points nowhere (RegistryError when the registry cannot be
        read: an outage must not look like "no champion")."""
        try:
            return self.get(alias).version
        except RegistryNotFound:
            return None

    def _info(self, mv) -> VersionInfo:
        return VersionInfo(name=mv.name, version=str(mv.version), aliases=list(mv.aliases or []),
                           tags=dict(mv.tags or {}), run_id=mv.run_id, created_ms=int(mv.creation_timestamp or 0))

    # ---- registration --------------------------------------------------------------------------------
    def register(self, bundle_dir: Path, run_id: str, tags: dict[str, str]) -> str:
        """Log ``bundle_dir`` as a pyfunc model in run ``run_id`` and register it; returns the version.

        The bundle is verified against its manifest (and ``tags["artifact_sha256"]`` when given) and its digest
        signed (:meth:`sign`) before anything is registered: a version that should be signed and cannot be is
        never created.
        """
        import shutil
        import tempfile

        import mlflow

        tags = dict(tags)
        digest = verify_bundle(bundle_dir, tags.get("artifact_sha256"))
        tags["artifact_sha256"] = digest
        try:
            signature = self.sign(digest)
        except SigningError as e:
            raise RegistryError(f"not registered: {e}") from e
        if signature is not None:
            tags[SIGNATURE_TAG] = signature
        elif SIGNATURE_TAG not in tags:  # a copy of a signed version (docker/bake_model.py) keeps its signature
            log.warning("registering an UNSIGNED model version (development without Vault): production serving "
                        "refuses it")

        mlflow.set_tracking_uri(self.settings.tracking_uri)
        mlflow.set_registry_uri(self.settings.registry_uri)
        with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_id=run_id):
            # MLflow stores an artifact directory under its own name: stage it as "bundle"
            staged = Path(tmp) / BUNDLE_KEY
            shutil.copytree(bundle_dir, staged)
            info = mlflow.pyfunc.log_model(
                name="model", python_model=str(PYFUNC_CODE), artifacts={BUNDLE_KEY: str(staged)},
                pip_requirements=_pip_requirements(), registered_model_name=self.name)
        version = str(info.registered_model_version)
        for k, v in tags.items():
            self.client.set_model_version_tag(self.name, version, k, str(v))
        return version

    # ---- aliases -------------------------------------------------------------------------------------
    def promote(self, version: str | int, alias: str, force: bool = False) -> None:
        """Point ``alias`` at ``version``. A version that failed the quality gate needs ``force``."""
        if alias not in ALIASES:
            raise RegistryError(f"unknown alias {alias!r}; choose from {list(ALIASES)}")
        info = self.get(str(version))
        if info.tags.get("gate_passed") == "false" and not force:
            raise RegistryError(f"version {info.version} failed the quality gate "
                                f"({info.tags.get('gate_reasons', 'no reason recorded')}); use --force to override")
        if alias == CHAMPION:
            current = self.alias_version(CHAMPION)
            if current == info.version:
                return
            if current is not None:
                history = self._history()
                history.append(current)
                self.client.set_registered_model_tag(self.name, "champion_history", json.dumps(history[-50:]))
            if self.alias_version(CHALLENGER) == info.version:
                self.client.delete_registered_model_alias(self.name, CHALLENGER)
        self.client.set_registered_model_alias(self.name, alias, info.version)

    def promote_registered(self, version: str | int, expect_challenger: str | int) -> bool:
        """Release step: make ``version`` (the one this build registered) champion, but only while the
        challenger alias still points at ``expect_challenger``; refuse if it moved meanwhile (another build or a
        person re-aliased it). True when champion moved, False when ``version`` already was champion (a re-run).
        MLflow has no compare-and-set on aliases: the check and the move are two calls, so two release jobs must
        not run at once (the Jenkinsfile disables concurrent builds)."""
        version, expected = str(version), str(expect_challenger)
        if self.alias_version(CHAMPION) == version:
            return False
        current = self.alias_version(CHALLENGER)
        if current != expected:
            raise RegistryError(f"refusing to promote version {version}: the challenger alias points at "
                                f"{'no version' if current is None else 'version ' + current}, not {expected} "
                                "(it moved since this build registered its model)")
        self.promote(version, CHAMPION)
        return True

    def rollback(self) -> tuple[str | None, str]:
        """Move ``champion`` back to the previous champion; returns (from_version, to_version)."""
        history = self._history()
        current = self.alias_version(CHAMPION)
        while history and history[-1] == current:
            history.pop()
        if not history:
            raise RegistryError("no previous champion to roll back to")
        target = history.pop()
        self.get(target)  # still exists
        self.client.set_registered_model_alias(self.name, CHAMPION, target)
        self.client.set_registered_model_tag(self.name, "champion_history", json.dumps(history))
        if current is not None:
            self.client.set_model_version_tag(self.name, current, "rolled_back_at",
                                              time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        return current, target

    def _history(self) -> list[str]:
        rm = self._registered()
        if rm is None:
            return []
        return list(json.loads((rm.tags or {}).get("champion_history", "[]")))

    # ---- loading -------------------------------------------------------------------------------------
    def bundle_path(self, version: str) -> Path:
        """Local path of a version's bundle (the store's own path for local artifacts, else a download)."""
        import mlflow.artifacts

        location = self.client.get_model_version_download_uri(self.name, str(version))
        root = mlflow.artifacts.download_artifacts(artifact_uri=f"{location.rstrip('/')}/artifacts/{BUNDLE_KEY}",
                                                   tracking_uri=self.settings.tracking_uri)
        return Path(root)

    def load(self, ref: str | int) -> tuple[VersionInfo, ModelBundle]:
        """Load a version (number or alias): its signature is verified first (before any download), then every
        file against the signed digest, and only then is anything deserialised."""
        info = self.get(ref)
        expected = info.tags.get("artifact_sha256")
        if not expected:
            raise BundleError(f"version {info.version} has no artifact_sha256 tag; refusing to load")
        try:
            self.verifier.verify(self.name, info.version, expected, info.tags.get(SIGNATURE_TAG))
            bundle = load_bundle(self.bundle_path(info.version), expected)
        except BundleError as e:
            raise BundleError(f"model {self.name} version {info.version}: {e}") from e
        bundle.meta.setdefault("version", info.version)
        return info, bundle


def _pip_requirements() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for dist in ("numpy", "pandas", "scikit-learn", "imbalanced-learn", "xgboost-cpu", "skops", "mlflow",
                 "pydantic", "PyYAML"):
        try:
            out.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            continue
    return out


def _json_or_text(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text
