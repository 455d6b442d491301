"""Every problem of a hand-written schema in one pass (``credit-score schema check``).

Loading a schema (:meth:`DatasetSchema.load`) stops at pydantic's first failing validator of an entry, and the
schema-wide checks run only once every entry is valid. Here each entry is validated on its own, so one run
lists them all: YAML syntax, wrong or missing keys (with the key a typo probably meant), wrong types, categorical
features without categories, ranges the wrong way round, a bad class that is not a class, names or sources
given twice.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from app.core.schema import DatasetSchema, Feature, Target


def _errors(model: type[BaseModel], raw: Any, where: str) -> list[str]:
    try:
        model.model_validate(raw)
    except ValidationError as e:
        out = []
        for err in e.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            given = f" (given {err['input']!r})" if err["type"] not in ("missing", "value_error") and \
                not isinstance(err.get("input"), dict | list) else ""
            out.append(f"{where}{'.' + loc if loc else ''}: {msg}{given}")
        return out
    return []


def _unknown_keys(raw: dict, model: type[BaseModel], where: str) -> list[str]:
    known = list(model.model_fields)
    out = []
    for k in raw:
        if k not in known:
            near = difflib.get_close_matches(str(k), known, n=1)
            out.append(f"{where}: unknown key {k!r}" + (f" (did you mean {near[0]!r}?)" if near else
                                                         f"; known keys: {', '.join(known)}"))
    return out


def _twice(values: list[Any], what: str) -> list[str]:
    seen, dup = set(), []
    for v in values:
        if v in seen and v not in dup:
            dup.append(v)
        seen.add(v)
    return [f"{what} {v!r} is given more than once" for v in dup]


def check_schema_dict(raw: Any) -> list[str]:
    """Every problem of a parsed schema document; empty when it loads as a DatasetSchema."""
    if not isinstance(raw, dict):
        return [f"the schema must be a mapping with name, target and features, not {type(raw).__name__}"]
    problems = _unknown_keys(raw, DatasetSchema, "schema")
    for key in ("name", "target", "features"):
        if key not in raw:
            problems.append(f"schema: the key {key!r} is missing")
    top = {k: v for k, v in raw.items() if k not in ("target", "features")}
    problems += [p for p in _errors(DatasetSchema, {**top, "target": {"name": "t", "classes": [0, 1],
                                                                      "bad_class": 1}, "features": []}, "schema")
                 if not p.startswith("schema.name: Field required")]  # said above
    target = raw.get("target")
    if isinstance(target, dict):
        problems += _unknown_keys(target, Target, "target") + _errors(Target, target, "target")
    elif "target" in raw:
        problems.append("target: must be a mapping with name, classes and bad_class")
    features = raw.get("features")
    names, sources = [], []
    if isinstance(features, list):
        if not features:
            problems.append("features: the list is empty")
        for i, f in enumerate(features):
            if not isinstance(f, dict):
                problems.append(f"features[{i}]: must be a mapping with name and type")
                continue
            where = f"features[{i}]" + (f" ({f['name']!r})" if "name" in f else "")
            problems += _unknown_keys(f, Feature, where) + _errors(Feature, f, where)
            if isinstance(f.get("categories"), list):
                problems += [f"{where}: {p}" for p in _twice(f["categories"], "category")]
            names.append(f.get("name"))
            if f.get("source") is not None:
                sources.append(f["source"])
    elif "features" in raw:
        problems.append("features: must be a list of features")
    if isinstance(target, dict):
        names.append(target.get("name"))
        if target.get("source") is not None:
            sources.append(target["source"])
    problems += [f"schema: {p}" for p in _twice([n for n in names if n is not None], "column name")]
    problems += [f"schema: {p}" for p in _twice(sources, "source")]
    if not problems:  # what only the whole schema can tell
        problems += _errors(DatasetSchema, raw, "schema")
    return problems


def check_schema_file(path: str | Path) -> tuple[DatasetSchema | None, list[str]]:
    """The schema and no problems, or None and every problem of the file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, [f"schema file not found: {path}"]
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as e:
        return None, [f"cannot read {path}: {e}"]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return None, [f"not valid YAML{where}: {getattr(e, 'problem', None) or e}"]
    problems = check_schema_dict(raw)
    return (None, problems) if problems else (DatasetSchema.model_validate(raw), [])
