"""Re-export of :mod:`app.core.bundle` (the bundle format moved to the core layer); kept for existing callers."""

from app.core.bundle import BUNDLE_FORMAT, MANIFEST, PROFILE, BundleError, ModelBundle, load_bundle, verify_bundle

__all__ = ["BUNDLE_FORMAT", "MANIFEST", "PROFILE", "BundleError", "ModelBundle", "load_bundle", "verify_bundle"]
