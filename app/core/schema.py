"""DatasetSchema: the single description of a data set that drives everything.

Training validation, the feature transformer, API request validation, OpenAPI docs, drift features and log
fields are all derived from one YAML file under ``data/schemas/`` (format documented in
``data/schemas/uci_credit.yaml``).
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, field_validator, model_validator

FeatureType = Literal["numeric", "integer", "categorical"]
ClassLabel = int | str


def _int_keys(v: Any) -> Any:
    """JSON turns integer mapping keys into strings; turn them back so a schema survives a round trip."""
    if isinstance(v, dict):
        return {int(k) if isinstance(k, str) and k.lstrip("-").isdigit() else k: val for k, val in v.items()}
    return v


class Feature(BaseModel):
    name: str
    type: FeatureType
    description: str = ""
    source: str | None = None
    min: float | None = None
    max: float | None = None
    categories: list[int | str] | None = None
    labels: dict[int | str, str] | None = None
    remap: dict[int | str, int | str] = Field(default_factory=dict)
    remap_reason: str | None = None
    nullable: bool = False
    protected: bool = False
    example: Any = None

    _keys = field_validator("remap", "labels", mode="before")(_int_keys)

    @model_validator(mode="after")
    def _consistent(self) -> Feature:
        if self.type == "categorical":
            if not self.categories:
                raise ValueError(f"feature {self.name!r}: categorical needs 'categories'")
            unknown = [v for v in self.remap.values() if v not in self.categories]
            if unknown:
                raise ValueError(f"feature {self.name!r}: remap targets {unknown} are not categories")
            if self.remap and not self.remap_reason:
                raise ValueError(f"feature {self.name!r}: remap needs a remap_reason (never silent)")
        else:
            if self.categories or self.remap:
                raise ValueError(f"feature {self.name!r}: only categorical features take categories/remap")
            if self.min is not None and self.max is not None and self.min > self.max:
                raise ValueError(f"feature {self.name!r}: min > max")
        return self

    @property
    def accepted_codes(self) -> list[int | str]:
        """Codes accepted on input: documented categories plus the remapped undocumented ones."""
        return list(self.categories or []) + [k for k in self.remap if k not in (self.categories or [])]

    @property
    def string_coded(self) -> bool:
        """A categorical feature with string categories: the model matrix holds each one's position."""
        return self.type == "categorical" and any(isinstance(c, str) for c in self.categories or [])

    @property
    def matrix_codes(self) -> dict[int | str, float]:
        """The model-matrix value of every accepted input code, remapped codes included.

        Integer categories are their own value; string categories are their position in ``categories``
        (``self-employed`` -> 1.0). A remapped code gets its target's value. Training (validation) and serving
        both encode through this map, so a row means the same to the model on either side. Built per call:
        callers on a hot path keep their own copy."""
        cats = list(self.categories or [])
        own = {c: float(i) if self.string_coded else float(c) for i, c in enumerate(cats)}
        return {**own, **{src: own[dst] for src, dst in self.remap.items() if src not in own}}

    @property
    def category_codes(self) -> list[float]:
        """The model-matrix value of each documented category, in schema order."""
        return [self.matrix_codes[c] for c in self.categories or []]

    def example_value(self) -> Any:
        if self.example is not None:
            return self.example
        if self.type == "categorical":
            return self.categories[0]  # type: ignore[index]
        lo = self.min if self.min is not None else 0
        hi = self.max if self.max is not None else lo + 1
        mid = (lo + hi) / 2
        return int(mid) if self.type == "integer" else mid


class Target(BaseModel):
    name: str
    source: str | None = None
    description: str = ""
    classes: list[ClassLabel]
    labels: dict[ClassLabel, str] | None = None
    bad_class: ClassLabel

    _keys = field_validator("labels", mode="before")(_int_keys)

    @model_validator(mode="after")
    def _consistent(self) -> Target:
        if len(self.classes) < 2:
            raise ValueError("target needs at least two classes")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("target classes must be unique")
        if self.bad_class not in self.classes:
            raise ValueError(f"bad_class {self.bad_class!r} is not one of the classes {self.classes}")
        return self


class DatasetSchema(BaseModel):
    name: str
    version: int = 1
    description: str = ""
    duplicates: Literal["drop", "keep", "error"] = "drop"
    target: Target
    features: list[Feature]

    @model_validator(mode="after")
    def _unique_names(self) -> DatasetSchema:
        names = [f.name for f in self.features] + [self.target.name]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate column names in schema: {dupes}")
        return self

    # ---- loading -------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> DatasetSchema:
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"schema file not found: {path}") from None
        return cls.model_validate(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DatasetSchema:
        return cls.model_validate(raw)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @cached_property
    def sha256(self) -> str:
        """Hash of the canonical JSON form: the same schema gives the same hash whatever the YAML layout.
        Cached: a schema is not changed after loading (the serving hot path looks this up per request)."""
        canon = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()

    # ---- views ---------------------------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def classes(self) -> list[ClassLabel]:
        return list(self.target.classes)

    @property
    def is_binary(self) -> bool:
        return len(self.target.classes) == 2

    @property
    def bad_index(self) -> int:
        return self.target.classes.index(self.target.bad_class)

    @property
    def protected_features(self) -> list[str]:
        return [f.name for f in self.features if f.protected]

    @property
    def source_columns(self) -> dict[str, str]:
        """Map from source codes (X1..X23, Y) to schema names, for the columns that declare one."""
        out = {f.source: f.name for f in self.features if f.source}
        if self.target.source:
            out[self.target.source] = self.target.name
        return out

    def example_row(self) -> dict[str, Any]:
        return {f.name: f.example_value() for f in self.features}
