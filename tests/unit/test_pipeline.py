"""Samplers live inside the pipeline: they resample in fit only, never at predict time."""

import numpy as np
import pytest
from imblearn.over_sampling import SMOTE

from app.config import TrainingConfig
from app.training.features import DERIVED, CreditFeatures
from app.training.samplers import make_pipeline
from app.training.validate import validate

CFG = TrainingConfig.model_validate({"random_forest": {"n_estimators": 10}, "xgboost": {"n_estimators": 10}})


@pytest.fixture(scope="module")
def xy(schema, small_frame):
    df, _ = validate(small_frame, schema)
    return df[schema.feature_names].to_numpy(), df["default"].astype(int).to_numpy()


class CountingSMOTE(SMOTE):
    """SMOTE that records the size of every input it resamples and the class counts it hands on."""

    calls: list[int] = []
    outputs: list[list[int]] = []

    def fit_resample(self, X, y, **kw):
        CountingSMOTE.calls.append(len(X))
        Xr, yr = super().fit_resample(X, y, **kw)
        CountingSMOTE.outputs.append(np.bincount(yr).tolist())
        return Xr, yr


@pytest.mark.parametrize("clf", ["random_forest", "xgboost"])
@pytest.mark.parametrize("sampler", ["none", "random_over", "smote", "adasyn", "borderline_smote"])
def test_every_combination_fits_and_predicts(schema, xy, clf, sampler):
    X, y = xy
    pipe = make_pipeline(clf, sampler, schema.feature_names, CFG, 2, seed=0).fit(X, y)
    proba = pipe.predict_proba(X[:50])
    assert proba.shape == (50, 2) and np.allclose(proba.sum(1), 1)


def test_sampler_runs_in_fit_only(schema, xy, monkeypatch):
    X, y = xy
    pipe = make_pipeline("xgboost", "smote", schema.feature_names, CFG, 2, seed=0)
    pipe.steps[1] = ("sampler", CountingSMOTE(random_state=0))
    classifier, seen = pipe.named_steps["classifier"], []
    real_fit = classifier.fit

    def recording_fit(Xc, yc, **kw):  # what reached the classifier: its rows and class counts
        seen.append((len(Xc), np.bincount(yc).tolist()))
        return real_fit(Xc, yc, **kw)

    monkeypatch.setattr(classifier, "fit", recording_fit)
    CountingSMOTE.calls.clear()
    CountingSMOTE.outputs.clear()
    pipe.fit(X, y)
    assert CountingSMOTE.calls == [len(X)]
    pipe.predict_proba(X)
    pipe.predict(X[:10])
    assert CountingSMOTE.calls == [len(X)]  # not called again at predict time
    # the classifier saw the resampled (balanced) rows, not the original imbalance
    original = np.bincount(y).tolist()
    assert original[0] != original[1]
    assert seen == [(sum(CountingSMOTE.outputs[0]), CountingSMOTE.outputs[0])]
    assert seen[0][1] == [max(original)] * 2 and seen[0][0] > len(X)
    assert pipe.named_steps["classifier"].get_booster().num_boosted_rounds() == 10  # the configured trees


def test_features_transformer_shapes_and_sources(schema, xy):
    X, _ = xy
    f = CreditFeatures(columns=schema.feature_names).fit(X)
    out = f.transform(X[:7])
    assert out.shape == (7, 23 + len(DERIVED)) and out.dtype == np.float32
    assert f.output_names_[:23] == schema.feature_names
    assert f.output_sources_[23 + [d.name for d in DERIVED].index("delay_max")] == list(DERIVED[4].sources)
    # one row as a 1-D list in schema order gives the same answer as the batch
    assert np.allclose(f.transform(X[:1]), out[:1])


def test_features_exclude_protected(schema, xy):
    X, _ = xy
    f = CreditFeatures(columns=schema.feature_names, exclude=schema.protected_features).fit(X)
    assert not set(schema.protected_features) & set(f.output_names_)


def test_features_impute_missing_with_training_median(schema, xy):
    X, _ = xy
    f = CreditFeatures(columns=schema.feature_names, derived=False).fit(X)
    row = X[:1].copy()
    row[0, 0] = np.nan
    assert f.transform(row)[0, 0] == pytest.approx(np.median(X[:, 0]))


def test_fold_contributions_keeps_row_sums(schema, xy):
    X, _ = xy
    f = CreditFeatures(columns=schema.feature_names).fit(X)
    contrib = np.random.default_rng(0).normal(size=(4, len(f.output_names_)))
    folded = f.fold_contributions(contrib)
    assert folded.shape == (4, 23)
    assert np.allclose(folded.sum(1), contrib.sum(1))
