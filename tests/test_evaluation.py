"""The winner beside the baselines: skill over naive, MASE, the best baseline and the verdict, on hand-made numbers;
the selection's folds and candidates."""

import numpy as np
import pytest
from keras_tuner import HyperParameters
from keras_tuner.engine.trial import Trial

from data.split import Layout
from search.choose.selection import best_candidates, fold_blocks
from search.scoring.evaluation import score
from tests.conftest import call_in_child

SERIES = np.cumsum(np.ones(100, dtype=np.float32))  # one-step naive MAE over any stretch: 1.0
LAYOUT = Layout(length=100, test_start=80, score_start=60)
BASELINES = {
    "naive": {"val_mae": 2.0, "test_mae": 4.0},
    "seasonal_naive": {"val_mae": 3.0, "test_mae": 3.0},
    "ets": {"val_mae": 1.5, "test_mae": 3.5},
}


def test_skill_mase_and_the_best_baseline_per_split():
    scores = score(
        SERIES, LAYOUT, winner_val_mae=1.0, test_mae=3.2, test_mae_without_refit=3.6, baselines=BASELINES, ets_skipped=None
    )
    assert scores.skill_vs_naive == pytest.approx({"val": 0.5, "test": 0.2})
    assert scores.mase == pytest.approx({"val": 1.0, "test": 3.2})
    assert scores.best_baseline == {"val": {"name": "ets", "mae": 1.5}, "test": {"name": "seasonal_naive", "mae": 3.0}}
    assert scores.verdict == (
        "on validation the winner (1) beats the best baseline, ets (1.5); "
        "on test the winner (3.2) does NOT beat the best baseline, seasonal_naive (3); "
        "it does NOT beat seasonal_naive on test"
    )
    metrics = scores.metrics()
    assert metrics["skill_vs_naive_test"] == pytest.approx(0.2) and metrics["test_mae_without_refit"] == 3.6
    assert metrics["baseline_ets_val_mae"] == 1.5


def test_the_verdict_says_plainly_when_the_winner_loses_to_naive():
    scores = score(SERIES, LAYOUT, 2.5, 4.5, None, BASELINES, "search.ets_baseline=false")
    assert "it does NOT beat naive and seasonal_naive on test" in scores.verdict
    assert scores.skill_vs_naive["test"] == pytest.approx(-0.125)
    assert scores.as_dict()["ets_skipped"] == "search.ets_baseline=false"


def test_mase_names_its_scale_and_uses_seasonal_naive_with_a_season():
    plain = score(SERIES, LAYOUT, 1.0, 3.2, None, BASELINES, None)
    seasonal = score(SERIES, LAYOUT, 1.0, 3.2, None, BASELINES, None, season_length=10)
    assert plain.as_dict()["mase_scale"] == "naive (lag 1)"
    assert seasonal.as_dict()["mase_scale"] == "seasonal naive (lag 10)"
    scale = float(np.mean(np.abs(SERIES[10:80] - SERIES[:70])))
    assert seasonal.mase["test"] == pytest.approx(3.2 / scale)


def test_folds_cover_the_scored_points_in_order():
    assert fold_blocks(1001, 1300, 3) == [range(1001, 1101), range(1101, 1200), range(1200, 1300)]
    assert fold_blocks(10, 12, 5) == [range(10, 11), range(11, 12)]  # never an empty fold


def _trial(trial_id, score, best_step, initial_epoch=None, units=8):
    hp = HyperParameters()
    hp.Fixed("units", units)
    if initial_epoch is not None:
        hp.Fixed("tuner/initial_epoch", initial_epoch)
    trial = Trial(hp, trial_id=trial_id)
    trial.score, trial.best_step = score, best_step
    return trial


def test_candidates_are_distinct_configurations_with_their_full_epoch_count():
    """A Hyperband continuation is the configuration it continues: one candidate, with its best score and the
    epochs from scratch up to its best epoch (initial epoch + best step + 1)."""
    trials = [_trial("0", 5.0, 0, 0), _trial("7", 4.0, 2, 3), _trial("3", 4.5, 1, units=16), _trial("4", 9.0, 0, units=32)]
    candidates = best_candidates(trials, top_k=2)
    assert [(c.trial_id, c.search_val_mae, c.epochs, c.values) for c in candidates] == [
        ("7", 4.0, 6, {"units": 8}),
        ("3", 4.5, 2, {"units": 16}),
    ]


def fit_final_with_a_diverging_member(store: str) -> dict:
    """`fit_final` on two members, one with a learning rate that makes its loss infinite (run in a child process)."""
    import keras
    from mlflow.tracking import MlflowClient

    from data.sources import synthetic_series
    from data.split import plan_layout
    from search.choose.selection import Candidate, Fits, Refitter, fit_final
    from search.fit.hypermodel import WindowedHyperModel
    from search.record.tracking import Tracker
    from tests.test_spaces import compose_config, specs_of

    specs = specs_of(compose_config("+space=linear", "space.window_size.value=10", "data.season_length=0"))
    series = synthetic_series(length=400)
    layout = plan_layout(len(series), 40, [0.7], [10])
    hypermodel = WindowedHyperModel(series, layout, specs, shuffle_buffer=100, patience=0, seed=0)
    tracker = Tracker(store, "diverging")
    tracker.start_parent("diverging", {})
    values = {"model": "linear", "window_size": 10, "split_time": 0.7, "batch_size": 32, "optimizer": "sgd", "loss": "mse"}
    good = Candidate("0", {**values, "learning_rate": 1e-4}, 1.0, 1)
    bad = Candidate("1", {**values, "learning_rate": 1e12}, 2.0, 1)
    refitter = Refitter(hypermodel, seed=0)
    alone = fit_final(Fits(refitter, tracker), [(bad, 100)], layout.test_start)
    kept = fit_final(Fits(refitter, tracker), [(good, 100), (bad, 100)], layout.test_start)
    runs = MlflowClient(store).search_runs([tracker.experiment_id], "tags.stage != ''")
    keras.backend.clear_session()
    return {
        "alone": alone is None,
        "kept_is_one_model": kept is not None and kept.name == "linear",  # the good member alone, not an average
        "statuses": sorted((r.data.tags["stage"], r.data.tags["source_trial_id"], r.info.status) for r in runs),
    }


@pytest.mark.slow
def test_a_diverging_refit_or_ensemble_member_is_left_out_not_fatal(store):
    """The search registers what it can: a member whose retraining diverges is left out (its run FAILED); a refit
    that diverges alone leaves the searched model in place (None)."""
    outcome, _ = call_in_child("tests.test_evaluation", "fit_final_with_a_diverging_member", store)
    assert outcome["alone"] is True and outcome["kept_is_one_model"] is True
    assert outcome["statuses"] == [
        ["ensemble", "0", "FINISHED"],
        ["ensemble", "1", "FAILED"],
        ["refit", "1", "FAILED"],
    ]
