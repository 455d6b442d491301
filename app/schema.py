"""Re-export of :mod:`app.core.schema` (the dataset schema moved to the core layer); kept for existing callers."""

from app.core.schema import ClassLabel, DatasetSchema, Feature, FeatureType, Target

__all__ = ["ClassLabel", "DatasetSchema", "Feature", "FeatureType", "Target"]
