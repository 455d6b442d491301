"""Loading the bundle's skops files with the narrowest allow-list the format allows.

skops does not unpickle, but it does import and instantiate the classes a file names, and it trusts many
scikit-learn and numpy types by default. A file that names ``FunctionTransformer(func=builtins.exec)`` is a
file that runs code. So before skops loads anything, :func:`load_skops` reads the file's ``schema.json`` and
checks every node in it against an exact allow-list of the (loader, type) pairs the project itself writes,
one list per file (``features.skops``, ``model.skops``):

* only the structural loaders skops uses for plain data and fitted estimators (no ``FunctionNode``,
  ``MethodNode``, ``PartialNode``, ``OperatorFuncNode``, ``ReduceNode``, ``BytesNode`` ...): no function or
  method object can be named, whatever its module;
* only the exact type names listed below: no prefix match, so ``sklearn.preprocessing.FunctionTransformer``
  or ``sklearn.pipeline.Pipeline`` are refused even though skops itself would trust them;
* skops then loads with ``trusted=`` exactly the listed types the file contains (its own check runs too);
* after loading, the object must be an instance of the class the file stands for (``isinstance``).

The lists were taken from ``skops.io.get_untrusted_types`` and the schema of bundles the project writes (the
grid's RandomForest with every sampler, binary and three-class; XGBoost stores ``model.ubj`` in its own format,
not skops) and of the oldest registered bundle format (``tests/fixtures/bundle_pre_core``: the transformer was
saved from ``app.training.features``). ``tests/unit/test_safe_skops.py`` keeps them in step with what training
writes: a new attribute type in a fitted estimator fails that test, not a production load.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# the loaders of plain data and fitted estimators; every other skops loader builds callables or raw bytes
_DATA_LOADERS = frozenset({"JsonNode", "DictNode", "ListNode", "TupleNode", "NdArrayNode", "TypeNode"})
_JSON = frozenset({"builtins.str", "builtins.int", "builtins.float", "builtins.bool", "builtins.NoneType"})
_NUMPY_SCALARS = frozenset({"numpy.int64", "numpy.int32", "numpy.intp", "numpy.float64", "numpy.float32",
                            "numpy.bool_", "numpy.bool"})

FEATURE_CLASSES = ("app.core.features.CreditFeatures", "app.training.features.CreditFeatures")
FOREST_CLASSES = ("sklearn.ensemble._forest.RandomForestClassifier",)

#: loader -> exact type names allowed in ``features.skops``
FEATURES_ALLOWED: dict[str, frozenset[str]] = {
    "ObjectNode": frozenset(FEATURE_CLASSES),
    "JsonNode": _JSON,
    "DictNode": frozenset({"builtins.dict"}),
    "ListNode": frozenset({"builtins.list"}),
    "TupleNode": frozenset({"builtins.tuple"}),
    "NdArrayNode": frozenset({"numpy.ndarray"}) | _NUMPY_SCALARS,
    "TypeNode": frozenset({"builtins.str"}),  # a dict's recorded key type
}

#: loader -> exact type names allowed in ``model.skops`` (the grid's scikit-learn classifier)
MODEL_ALLOWED: dict[str, frozenset[str]] = {
    "ObjectNode": frozenset({*FOREST_CLASSES, "sklearn.tree._classes.DecisionTreeClassifier"}),
    "TreeNode": frozenset({"sklearn.tree._tree.Tree"}),
    "JsonNode": _JSON,
    "DictNode": frozenset({"builtins.dict"}),
    "ListNode": frozenset({"builtins.list"}),
    "TupleNode": frozenset({"builtins.tuple"}),
    "NdArrayNode": frozenset({"numpy.ndarray"}) | _NUMPY_SCALARS,
    "TypeNode": frozenset({"builtins.str"}),
}


class UnsafeSkopsFile(ValueError):
    """A skops file names a loader or a type outside its allow-list (refused before anything is loaded)."""


def _nodes(node: Any) -> Iterator[dict[str, Any]]:
    """Every skops node in a schema (a dict with a ``__loader__``), depth first, without recursion limits."""
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            if "__loader__" in cur:
                yield cur
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)


def schema_types(path: Path) -> set[tuple[str, str]]:
    """The (loader, ``module.class``) pairs a skops file names, read from its ``schema.json`` only."""
    try:
        with zipfile.ZipFile(path) as z:
            schema = json.loads(z.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
        raise UnsafeSkopsFile(f"{path.name} is not a readable skops file ({type(e).__name__})") from None
    found = set()
    for n in _nodes(schema):
        loader, module, cls = n.get("__loader__"), n.get("__module__"), n.get("__class__")
        if not all(isinstance(x, str) for x in (loader, module, cls)):
            raise UnsafeSkopsFile(f"{path.name} has a malformed node")
        found.add((loader, f"{module}.{cls}"))
    return found


def check_types(path: Path, allowed: dict[str, frozenset[str]]) -> list[str]:
    """Refuse a file naming anything outside ``allowed``; returns the type names it uses (all allowed)."""
    found = schema_types(path)
    bad = sorted(f"{t} ({loader})" for loader, t in found if t not in allowed.get(loader, frozenset()))
    if bad:
        raise UnsafeSkopsFile(f"{path.name} names types outside the allow-list: {bad}")
    return sorted({t for _, t in found})


def load_skops(path: Path, allowed: dict[str, frozenset[str]], expect: tuple[type, ...]) -> Any:
    """Check ``path`` against ``allowed``, load it with exactly those types trusted, check the result's class."""
    import skops.io as sio

    trusted = check_types(path, allowed)
    try:
        obj = sio.load(path, trusted=trusted)
    except Exception as e:  # skops's own refusal or a corrupt file: the bundle is refused, never half-loaded
        raise UnsafeSkopsFile(f"{path.name} could not be loaded: {type(e).__name__}: {e}") from e
    if not isinstance(obj, expect):
        raise UnsafeSkopsFile(f"{path.name} holds a {type(obj).__module__}.{type(obj).__qualname__}, "
                              f"expected {' or '.join(c.__qualname__ for c in expect)}")
    return obj
