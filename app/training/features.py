"""Re-export of :mod:`app.core.features` (the feature transformer moved to the core layer).

Do not remove: skops records the module a class was defined in, and bundles saved before the core layer record
``app.training.features.CreditFeatures``; loading them imports this module (``tests/unit/test_bundle_compat.py``).
"""

from app.core.features import DERIVED, CreditFeatures, Derived

__all__ = ["DERIVED", "CreditFeatures", "Derived"]
