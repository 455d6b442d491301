"""The feature transformer shared by training and serving.

Input: rows with the schema's features in schema order (a NumPy array, or a DataFrame with those columns),
categoricals as their codes. Output: the raw features (minus excluded ones) plus engineered credit features
(utilisation, payment ratios, delay counts). Every output column names the schema features it comes from
(``output_sources_``), so per-column attributions can be folded back onto schema features additively.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

Array = np.ndarray


@dataclass(frozen=True)
class Derived:
    """An engineered column. ``ratio``: (num . x) / max(|den . x|, 1) with weight maps over schema features;
    ``delay_max`` / ``delay_months``: the worst delay and the number of delayed months over ``sources``."""

    name: str
    kind: str  # ratio | delay_max | delay_months
    sources: tuple[str, ...]
    num: dict[str, float] | None = None
    den: dict[str, float] | None = None


_PAY = ("pay_0", "pay_2", "pay_3", "pay_4", "pay_5", "pay_6")
_BILL = tuple(f"bill_amt{k}" for k in range(1, 7))
_PAID = tuple(f"pay_amt{k}" for k in range(1, 7))


def _ratio(name: str, num: dict[str, float], den: dict[str, float]) -> Derived:
    return Derived(name, "ratio", tuple(dict.fromkeys([*num, *den])), num, den)


# Credit features used when the schema has their source columns (the UCI layout and its relatives).
DERIVED: tuple[Derived, ...] = (
    _ratio("utilisation_1", {"bill_amt1": 1.0}, {"limit_bal": 1.0}),
    _ratio("utilisation_mean", {b: 1 / 6 for b in _BILL}, {"limit_bal": 1.0}),
    _ratio("pay_ratio_1", {"pay_amt1": 1.0}, {"bill_amt2": 1.0}),
    _ratio("pay_ratio_mean", dict.fromkeys(_PAID, 1.0), dict.fromkeys(_BILL, 1.0)),
    Derived("delay_max", "delay_max", _PAY),
    Derived("delay_months", "delay_months", _PAY),
    _ratio("bill_trend", {"bill_amt1": 1.0, "bill_amt6": -1.0}, {"limit_bal": 1.0}),
)


class CreditFeatures(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Select schema features, impute missing values with training medians, add credit features.

    Parameters
    ----------
    columns : list of str
        The schema's feature names, in the order the input rows have them.
    exclude : list of str
        Features left out of the model (e.g. protected attributes); they still feed derived features
        only if listed in no derived feature's sources (derived features using them are dropped too).
    derived : bool
        Whether to add the engineered credit features.
    """

    def __init__(self, columns: list[str] | None = None, exclude: list[str] | None = None, derived: bool = True):
        self.columns = columns
        self.exclude = exclude
        self.derived = derived

    def fit(self, X, y=None):  # noqa: N803 (scikit-learn's X)
        arr = self._as_array(X)
        cols = list(self.columns or [])
        if arr.shape[1] != len(cols):
            raise ValueError(f"expected {len(cols)} feature columns, got {arr.shape[1]}")
        excluded = set(self.exclude or [])
        self.keep_idx_ = np.array([i for i, c in enumerate(cols) if c not in excluded], dtype=np.intp)
        med = np.nanmedian(arr, axis=0) if arr.shape[0] else np.zeros(arr.shape[1])
        self.medians_ = np.where(np.isnan(med), 0.0, med)
        present = set(cols)
        self.derived_ = [d.name for d in DERIVED if self.derived and set(d.sources) <= present
                         and not set(d.sources) & excluded]
        by_name = {d.name: d for d in DERIVED}
        self.output_names_ = [cols[i] for i in self.keep_idx_] + self.derived_
        self.output_sources_ = [[cols[i]] for i in self.keep_idx_] + [list(by_name[n].sources)
                                                                      for n in self.derived_]
        self.n_features_in_ = arr.shape[1]
        self._build_derived()
        return self

    def _build_derived(self) -> None:
        """Weight matrices for the ratio columns and index sets for the delay columns (one matmul per row
        batch instead of a numpy call per source column: the single-row serving path depends on it)."""
        idx = {c: i for i, c in enumerate(self.columns)}
        by_name = {d.name: d for d in DERIVED}
        ratios = [by_name[n] for n in self.derived_ if by_name[n].kind == "ratio"]
        self.ratio_num_ = np.zeros((len(self.columns), len(ratios)))
        self.ratio_den_ = np.zeros((len(self.columns), len(ratios)))
        for j, d in enumerate(ratios):
            for c, w in (d.num or {}).items():
                self.ratio_num_[idx[c], j] = w
            for c, w in (d.den or {}).items():
                self.ratio_den_[idx[c], j] = w
        delays = [by_name[n] for n in self.derived_ if by_name[n].kind != "ratio"]
        self.delay_idx_ = [np.array([idx[c] for c in d.sources], dtype=np.intp) for d in delays]
        self.delay_kind_ = [d.kind for d in delays]
        # output order: ratios and delays back into the declared order of derived_
        order = [n for n in self.derived_ if by_name[n].kind == "ratio"] + [d.name for d in delays]
        self.derived_order_ = np.array([order.index(n) for n in self.derived_], dtype=np.intp)
        self.derived_cols_ = np.argsort(self.derived_order_)  # computed column -> its place among derived_

    def transform(self, X):  # noqa: N803
        arr = self._as_array(X)
        if arr.shape[1] != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} feature columns, got {arr.shape[1]}")
        if np.isnan(arr.sum()):  # any missing value (one reduction; a row's sum is NaN iff it holds one)
            arr = np.where(np.isnan(arr), self.medians_, arr)
        k = len(self.keep_idx_)
        out = np.empty((len(arr), k + len(self.derived_)), dtype=np.float32)  # written in place, column groups
        out[:, :k] = arr[:, self.keep_idx_]
        if self.derived_:
            if "derived_cols_" not in self.__dict__:  # fitted by an earlier version of this class
                self._build_derived()
            cols = k + self.derived_cols_
            n_ratio = self.ratio_num_.shape[1]
            if n_ratio:
                out[:, cols[:n_ratio]] = (arr @ self.ratio_num_) / np.maximum(np.abs(arr @ self.ratio_den_), 1.0)
            for j, (ix, kind) in enumerate(zip(self.delay_idx_, self.delay_kind_, strict=True)):
                months = arr[:, ix]
                out[:, cols[n_ratio + j]] = months.max(axis=1).clip(0) if kind == "delay_max" \
                    else (months > 0).sum(axis=1)
        return out

    def get_feature_names_out(self, input_features=None):
        return np.asarray(self.output_names_, dtype=object)

    def fold_contributions(self, contrib: Array) -> Array:
        """Fold per-output-column attributions (n_rows, n_out) onto the input features (n_rows, n_in).

        A derived column's attribution is split equally among its sources, so the row sums are unchanged.
        """
        return np.asarray(contrib, dtype=np.float64) @ self.fold_matrix()

    def fold_matrix(self) -> Array:
        """(n_out, n_in) matrix mapping output columns onto input features; built once, then cached."""
        cached = self.__dict__.get("_fold")
        if cached is None:
            index = {c: i for i, c in enumerate(self.columns)}
            cached = np.zeros((len(self.output_sources_), len(self.columns)))
            for j, sources in enumerate(self.output_sources_):
                for s in sources:
                    cached[j, index[s]] += 1.0 / len(sources)
            self.__dict__["_fold"] = cached
        return cached

    def _as_array(self, X) -> Array:  # noqa: N803
        if hasattr(X, "columns"):
            X = X[list(self.columns)].to_numpy(dtype=np.float64, na_value=np.nan)  # noqa: N806
        return np.asarray(X, dtype=np.float64)
