"""The blend's parts: the statistical forecasters as linear maps of a window, the greedy weights, the Keras model."""

import numpy as np
import pytest

from data import baselines, linear_forecasts
from data.sources import synthetic_series
from data.windows import window_view
from search.choose.blend import Member, choose_blend, cross_fitted, greedy_weights


def _seasonal(length: int = 700, season: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    return (50 + 0.05 * t + 5 * np.sin(2 * np.pi * t / season) + rng.normal(0, 0.5, length)).astype(np.float32)


@pytest.mark.parametrize("horizon", [1, 6])
def test_the_linear_forecasters_are_the_closing_tables_baselines_from_the_window_alone(horizon):
    """naive, seasonal naive, the moving average and `ar_changes` as `window @ kernel + bias` forecast exactly what
    the baselines forecast from the whole series, on every origin; drift too where its slope was fitted, and within
    0.5% after 300 more points."""
    series, fit_stop, origins = _seasonal(), 400, range(400, 700 - horizon + 1)
    found = {f.name: f for f in linear_forecasts.statistical_forecasters(series, fit_stop, 400, horizon, 12, 6, 5)}
    assert {"naive", "seasonal_naive", "moving_average", "ar_changes", "ets", "theta", "drift"} <= set(found)
    expected = baselines.baseline_forecasts(
        series, origins, 12, 6, autoregression=baselines.ar_changes(series, fit_stop, 5, horizon=horizon), horizon=horizon
    )
    for name in ("naive", "seasonal_naive", "moving_average", "ar_changes"):
        x, _ = window_view(series, found[name].length, origins.start, 700, horizon)
        np.testing.assert_allclose(found[name].forecast(x).reshape(expected[name].shape), expected[name], rtol=1e-5, atol=1e-4)
    x, _ = window_view(series, 1, origins.start, 700, horizon)  # drift: the slope of the points before the first origin
    np.testing.assert_allclose(
        found["drift"].forecast(x)[:1].reshape(expected["drift"][:1].shape), expected["drift"][:1], rtol=1e-6
    )
    np.testing.assert_allclose(found["drift"].forecast(x).reshape(expected["drift"].shape), expected["drift"], rtol=5e-3)


def test_windowed_holt_winters_is_affine_in_its_window_and_close_to_statsmodels():
    """The kernel found from the unit windows reproduces the recursion on any window (so the map is exact), and on a
    clean seasonal series its forecasts are as good as statsmodels' Holt-Winters run over the whole history."""
    series, horizon = _seasonal(), 3
    forecaster = linear_forecasts.ets(series, 400, 12, horizon, available=400)
    assert forecaster is not None and forecaster.length % 12 == 0
    fitted = baselines.fit_exponential_smoothing(series, 400, 12).params
    recursion = linear_forecasts.holt_winters(
        fitted["smoothing_level"],
        fitted["smoothing_trend"],
        fitted["smoothing_seasonal"],
        fitted["damping_trend"],
        12,
        forecaster.length,
        horizon,
    )
    windows = np.random.default_rng(1).normal(50, 10, (5, forecaster.length))
    np.testing.assert_allclose(forecaster.forecast(windows), recursion.forecast(windows), rtol=1e-9)
    x, y = window_view(series, forecaster.length, 400, 700, horizon)
    ours = np.mean(np.abs(y - forecaster.forecast(x)))
    theirs = np.mean(np.abs(y - baselines.exponential_smoothing(series, 400, 12, horizon)[400 : 700 - horizon + 1]))
    assert ours < 1.1 * theirs


@pytest.mark.parametrize("horizon", [1, 6])
def test_the_theta_baseline_is_statsmodels_theta_at_its_fit_origin_and_reads_only_the_past(horizon):
    """The closing table's `theta` from the origin it was fitted at is statsmodels' `ThetaModel` forecast (season
    divided out, half the trend); from a later origin it reads nothing at or after that origin."""
    from statsmodels.tsa.forecasting.theta import ThetaModel

    series, fit_stop = _seasonal().astype(np.float64), 400
    for season in (12, 0):
        ours = baselines.theta(series, fit_stop, season, horizon)
        theirs = ThetaModel(series[:fit_stop], period=season or 1, deseasonalize=bool(season)).fit().forecast(horizon)
        np.testing.assert_allclose(np.atleast_1d(ours[fit_stop]), np.asarray(theirs), rtol=1e-5)
        changed = series.copy()
        changed[500:] += 100.0
        np.testing.assert_array_equal(baselines.theta(changed, fit_stop, season, horizon)[450:501], ours[450:501])
    found = baselines.baseline_forecasts(series, range(400, 700 - horizon + 1), 12, horizon=horizon, theta_method=ours)
    assert "theta" in found


def test_windowed_theta_is_statsmodels_theta_on_its_window_and_affine_in_it():
    """Without a season, the windowed Theta on a window is statsmodels' Theta fitted on exactly that window (its slope,
    its smoothing from the first value) given the same alpha; with one, its forecasts are as good as the table's."""
    from statsmodels.tsa.forecasting.theta import ThetaModel

    series, horizon = _seasonal().astype(np.float64), 4
    plain = linear_forecasts.theta(series, 100, 0, horizon, available=100)
    assert plain is not None and plain.length == 100
    fitted = ThetaModel(series[:100], period=1, deseasonalize=False).fit()
    np.testing.assert_allclose(plain.forecast(series[None, :100])[0], np.asarray(fitted.forecast(horizon)), rtol=1e-6)
    seasonal = linear_forecasts.theta(series, 400, 12, horizon, available=400)
    assert seasonal is not None and seasonal.length % 12 == 0
    x, y = window_view(series, seasonal.length, 400, 700, horizon)
    ours = np.mean(np.abs(y - seasonal.forecast(x)))
    theirs = np.mean(np.abs(y - baselines.theta(series, 400, 12, horizon)[400 : 700 - horizon + 1]))
    assert ours < 1.1 * theirs
    noise = 50 + np.random.default_rng(3).normal(0, 1, 400)  # statsmodels' test finds no season: none is taken out
    assert baselines.fit_theta(noise, 400, 12).seasonal.size == 0
    assert linear_forecasts.theta(noise, 400, 12, horizon, available=400).length == linear_forecasts.ETS_SPAN_NO_SEASON
    assert baselines.fit_theta(np.full(100, 5.0), 100, 12) is None  # no trend to fit in a constant history


def test_greedy_weights_pick_the_better_member_and_split_opposite_biases():
    actual = np.zeros((200, 1))
    rng = np.random.default_rng(0)
    good, bad = rng.normal(0, 1, (200, 1)), rng.normal(0, 5, (200, 1))
    assert greedy_weights(np.stack([bad, good]), actual, 10).tolist() == [0.0, 1.0]
    high, low = actual + 1.0, actual - 1.0  # each misses by 1, their mean by 0
    weights = greedy_weights(np.stack([high, low]), actual, 10)
    assert weights.sum() == pytest.approx(1.0) and weights.tolist() == [0.5, 0.5]


def test_bagged_selection_shares_the_weight_among_members_the_validation_cannot_tell_apart():
    """Members whose errors are the same noise: one greedy run hands the whole weight to the luckiest on these origins,
    the bagged selection shares it; the blend's score is the cross-fitted one (weights chosen on the other half)."""
    rng = np.random.default_rng(3)
    actual = rng.normal(0, 1, (200, 1))
    members = [Member(f"m{i}", "statistical", actual + rng.normal(0, 1, (200, 1)), 1.0) for i in range(6)]
    stacked = np.stack([m.val_forecasts for m in members])
    assert greedy_weights(stacked, actual, 1).max() == 1.0
    blend = choose_blend(members, actual, 25)
    assert max(m.weight for m in members) < 0.5 and sum(m.weight for m in members) == pytest.approx(1.0)
    honest = cross_fitted(stacked, actual, 25)
    assert blend.val_mae_cross_fitted == pytest.approx(float(np.mean(np.abs(actual - honest))))
    two_sided = [Member("high", "statistical", actual + 1.0, 1.0), Member("low", "statistical", actual - 1.0, 1.0)]
    assert choose_blend(two_sided, actual, 25).weights() == pytest.approx({"high": 0.5, "low": 0.5}, abs=0.03)


def test_a_member_far_behind_the_best_takes_no_weight_even_where_it_cancels_a_bias():
    """A level forecaster far off (10x the best member's error) whose bias happens to offset the best member's on the
    validation origins: plain greedy selection gives it weight, the blend does not (and it leaves the others alone)."""
    rng = np.random.default_rng(5)
    actual = rng.normal(0, 1, (120, 1))
    biased = actual + 0.5 + rng.normal(0, 0.2, (120, 1))  # the best member, always 0.5 too high
    far = actual - 6.0  # ten times its error, on the other side
    stacked = np.stack([biased, far])
    assert greedy_weights(stacked, actual, 25)[1] > 0
    members = [Member("biased", "refit", biased, 0.5), Member("far", "statistical", far, 6.0)]
    assert choose_blend(members, actual, 25).weights() == {"biased": 1.0}


def test_the_weighted_model_is_one_keras_model_that_reloads_in_safe_mode(tmp_path):
    """Networks scaled by their weights plus the statistical kernel, in one model of Keras' own layers."""
    import keras

    window = keras.Input((8,))
    network = keras.Model(window, keras.layers.Dense(1)(window))
    network.set_weights([np.full((8, 1), 0.1, dtype=np.float32), np.ones(1, dtype=np.float32)])
    from models.ensemble import weighted_model

    kernel, bias = np.zeros((20, 1)), np.array([2.0])
    kernel[-1, 0] = 1.0  # naive: the last value, plus 2
    model = weighted_model([network], [0.25], 0.75 * kernel, 0.75 * bias, horizon=1)
    series = synthetic_series(length=100)
    x, _ = window_view(series, 20, 20, 100)
    expected = 0.25 * (x[:, -8:].sum(axis=1) * 0.1 + 1.0) + 0.75 * (x[:, -1] + 2.0)
    path = tmp_path / "blend.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)  # safe_mode=True
    np.testing.assert_allclose(reloaded.predict_on_batch(np.asarray(x, dtype=np.float32)).ravel(), expected, rtol=1e-5)


def test_the_average_of_the_networks_is_one_candidate_and_registers_as_its_parts():
    """The equal-weight average (what `search.blend=false` registers) is offered whole; chosen, its weight is shared
    by its parts, added to what a part holds on its own."""
    from search.choose.blend import atoms, averages

    actual = np.zeros((10, 1))
    refits = [Member(f"trial {i} refit", "refit", actual + sign, 1.0) for i, sign in ((1, 1.0), (2, -1.0))]
    (average,) = averages([*refits, Member("trial 3", "searched", actual + 2.0, 2.0)], actual)
    assert average.name == "average of 2 refits" and average.val_mae == 0.0 and average.parts == refits
    average.weight, refits[0].weight = 0.6, 0.4
    held = {m.name: m.weight for m in atoms([average, refits[0]])}
    assert held == pytest.approx({"trial 1 refit": 0.7, "trial 2 refit": 0.3})


def test_weights_chosen_on_the_earlier_block_follow_it_and_are_scored_on_validation():
    """`search.blend_evidence=earlier`: a network that looks best on validation (where the search chose it) but not on
    the block before takes no weight; a member with no earlier forecasts takes none; without any network run one
    block back, the weights come from validation."""
    rng = np.random.default_rng(0)
    actual, earlier_actual = rng.normal(0, 1, (40, 3)), rng.normal(0, 1, (40, 3))
    lucky = Member("trial 1 refit", "refit", actual + 0.1, 0.1, earlier_forecasts=earlier_actual + 2.0)
    steady = Member("ar_changes", "statistical", actual + 0.5, 0.5, earlier_forecasts=earlier_actual + 0.5)
    unrun = Member("trial 2 refit", "refit", actual + 0.05, 0.05)
    blend = choose_blend([lucky, steady, unrun], actual, 10, "earlier", earlier_actual)
    assert (lucky.weight, steady.weight, unrun.weight) == (0.0, 1.0, 0.0)
    assert blend.evidence == "earlier" and blend.val_mae_cross_fitted == pytest.approx(0.5)  # scored on validation
    assert "earlier" in blend.forecasts() and set(blend.forecasts()["earlier"]["members"]) == {"trial 1 refit", "ar_changes"}
    lucky.earlier_forecasts = None
    fallback = choose_blend([lucky, steady, unrun], actual, 10, "earlier", earlier_actual)
    assert fallback.evidence.startswith("validation") and unrun.weight > 0.5
