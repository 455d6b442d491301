"""The model bundle: what training registers and serving loads.

A directory with
  bundle.json       schema, classes, bad class, threshold, classifier/sampler names, training metrics
  features.skops    the fitted :class:`~app.core.features.CreditFeatures` (skops, no pickle)
  model.ubj         XGBoost's own format, or model.skops for scikit-learn forests
  reference_profile.json   optional: the training data's profile for drift monitoring (app/core/profile.py)
  MANIFEST.sha256   "<sha256>  <file>" for every file above

The bundle's identity is the sha256 of its manifest (``artifact_sha256``), which the registry stores as a tag.
:func:`load_bundle` checks every file against the manifest and the manifest against the expected hash
before deserialising anything, and refuses a mismatch.

The sampler is part of the training pipeline only: imbalanced-learn samplers act in ``fit`` and are skipped
at predict time, so the served pipeline is ``features -> classifier`` with the same fitted objects.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.core.features import CreditFeatures
from app.core.safe_skops import FEATURES_ALLOWED, MODEL_ALLOWED, UnsafeSkopsFile, load_skops
from app.core.schema import DatasetSchema

BUNDLE_FORMAT = 1
MANIFEST = "MANIFEST.sha256"
PROFILE = "reference_profile.json"


class BundleError(RuntimeError):
    """A bundle is missing, tampered with, or cannot be loaded."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class ModelBundle:
    schema: DatasetSchema
    features: CreditFeatures
    classifier: Any
    classifier_name: str
    sampler_name: str
    threshold: float | None
    metrics: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    artifact_sha256: str | None = None
    reference_profile: dict[str, Any] | None = None

    @property
    def classes(self) -> list[Any]:
        return self.schema.classes

    @property
    def bad_index(self) -> int:
        return self.schema.bad_index

    def predict_proba(self, X) -> np.ndarray:  # noqa: N803
        """Class probabilities (n, K) in the schema's class order, for rows in schema feature order."""
        return self.classifier.predict_proba(self.features.transform(X))

    def pipeline(self):
        from sklearn.pipeline import Pipeline

        return Pipeline([("features", self.features), ("classifier", self.classifier)])

    def set_single_thread(self) -> None:
        """One inference thread: several workers on few cores must not spin against each other."""
        if self.classifier_name == "xgboost":
            self.classifier.set_params(n_jobs=1)
        elif hasattr(self.classifier, "n_jobs"):
            self.classifier.n_jobs = 1

    # ---- persistence ---------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> str:
        """Write the bundle; returns its artifact sha256."""
        import skops.io as sio

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        sio.dump(self.features, d / "features.skops")
        if self.classifier_name == "xgboost":
            model_file = "model.ubj"
            self.classifier.save_model(d / model_file)
        else:
            model_file = "model.skops"
            sio.dump(self.classifier, d / model_file)
        info = {
            "format": BUNDLE_FORMAT,
            "schema": self.schema.to_dict(),
            "schema_sha256": self.schema.sha256,
            "classifier": self.classifier_name,
            "sampler": self.sampler_name,
            "threshold": self.threshold,
            "model_file": model_file,
            "feature_names_out": list(self.features.output_names_),
            "metrics": self.metrics,
            "meta": self.meta,
        }
        (d / "bundle.json").write_text(json.dumps(info, indent=2, sort_keys=True, default=_json_default))
        files = ["bundle.json", "features.skops", model_file]
        if self.reference_profile is not None:
            (d / PROFILE).write_text(json.dumps(self.reference_profile, separators=(",", ":"),
                                                default=_json_default))
            files.append(PROFILE)
        manifest = "".join(f"{_sha256(d / f)}  {f}\n" for f in files)
        (d / MANIFEST).write_bytes(manifest.encode("ascii"))
        self.artifact_sha256 = hashlib.sha256(manifest.encode("ascii")).hexdigest()
        return self.artifact_sha256


def verify_bundle(directory: str | Path, expected_sha256: str | None) -> str:
    """Check every file against the manifest and the manifest against ``expected_sha256``.

    Returns the bundle's sha256; raises :class:`BundleError` on any mismatch, before anything is loaded.
    """
    d = Path(directory)
    mpath = d / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"bundle at {d} has no {MANIFEST}; refusing to load")
    raw = mpath.read_bytes()
    actual = hashlib.sha256(raw).hexdigest()
    if expected_sha256 is not None and actual != expected_sha256:
        raise BundleError(f"bundle manifest sha256 {actual[:12]}... does not match the registered "
                          f"{expected_sha256[:12]}...; refusing to load")
    try:
        manifest = raw.decode("ascii")
    except UnicodeDecodeError:
        raise BundleError(f"bundle {MANIFEST} is corrupt; refusing to load") from None
    for line in manifest.splitlines():
        digest, _, name = line.partition("  ")
        f = d / name
        if not name or "/" in name or not f.is_file():
            raise BundleError(f"bundle file {name!r} is missing; refusing to load")
        if _sha256(f) != digest:
            raise BundleError(f"bundle file {name} does not match its sha256 in the manifest "
                              f"(tampered or corrupt); refusing to load")
    return actual


def load_bundle(directory: str | Path, expected_sha256: str | None) -> ModelBundle:
    """Verify, then load a bundle. ``expected_sha256=None`` only checks internal consistency.

    The skops files are loaded through :mod:`app.core.safe_skops`: an exact allow-list per file, checked
    before skops reads anything, then an ``isinstance`` check of what was loaded.
    """
    d = Path(directory)
    digest = verify_bundle(d, expected_sha256)
    info = json.loads((d / "bundle.json").read_text())
    if info.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"unsupported bundle format {info.get('format')!r}")
    features = _skops_load(d / "features.skops", FEATURES_ALLOWED, (CreditFeatures,))
    if info["classifier"] == "xgboost":
        from xgboost import XGBClassifier

        if info.get("model_file") != "model.ubj":
            raise BundleError(f"an xgboost bundle stores model.ubj, not {info.get('model_file')!r}")
        clf = XGBClassifier()
        clf.load_model(d / info["model_file"])
    else:
        from sklearn.ensemble import RandomForestClassifier

        if info.get("model_file") != "model.skops":
            raise BundleError(f"a scikit-learn bundle stores model.skops, not {info.get('model_file')!r}")
        clf = _skops_load(d / info["model_file"], MODEL_ALLOWED, (RandomForestClassifier,))
    profile = json.loads((d / PROFILE).read_text()) if (d / PROFILE).is_file() and _listed(d, PROFILE) else None
    return ModelBundle(schema=DatasetSchema.from_dict(info["schema"]), features=features, classifier=clf,
                       classifier_name=info["classifier"], sampler_name=info["sampler"],
                       threshold=info["threshold"], metrics=info.get("metrics", {}), meta=info.get("meta", {}),
                       artifact_sha256=digest, reference_profile=profile)


def _listed(d: Path, name: str) -> bool:
    """Only files listed in the (verified) manifest are trusted."""
    return any(line.partition("  ")[2] == name for line in (d / MANIFEST).read_text().splitlines())


def _skops_load(path: Path, allowed, expect: tuple[type, ...]):
    try:
        return load_skops(path, allowed, expect)
    except UnsafeSkopsFile as e:
        raise BundleError(f"{e}; refusing to load") from e


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
