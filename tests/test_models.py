"""Every builder, in every scaling mode and with seasonal context, maps raw windows to raw forecasts,
trains, and reloads with Keras' safe_mode=True in a fresh process."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from models import BUILDER_ARGUMENTS, BUILDERS, compile_model
from models.framing import SCALINGS, Framing, input_length
from models.names import LOSSES, OPTIMIZERS
from search.fit.backends import BACKENDS, installed

SMALL = {
    "dnn": {"dense_units": 4, "dense_layers": 2},
    "rnn": {"rnn_units": 4, "rnn_layers": 2},
    "lstm": {"lstm_units": 4, "lstm_layers": 2, "bidirectional": True},
    "gru": {"gru_units": 4, "gru_layers": 1, "bidirectional": True},
    "conv_lstm": {"filters": 4, "kernel_size": 3, "lstm_units": 4, "lstm_layers": 2, "dense_units": 4},
    "linear": {},
}


def framing(
    scaling="standard", window_size=12, seasons=0, halfwidth=0, season_length=0, mean=50.0, std=10.0, step_std=2.0, **more
):
    if scaling == "profile" and "profile" not in more:  # a season's average changes, as `seasonal_profile` gives
        more.update(profile=tuple(np.diff(np.sin(2 * np.pi * np.arange(season_length + 1) / season_length))), profile_std=0.5)
    return Framing(window_size, scaling, seasons, halfwidth, season_length, mean, std, step_std, **more)


def test_registry_names_match_builder_signatures():
    import inspect

    for name, builder in BUILDERS.items():
        params = set(inspect.signature(builder).parameters) - {"framing"}
        assert params == set(BUILDER_ARGUMENTS[name]), name


def test_every_builder_scaling_and_seasonal_context_reloads_safely_in_a_fresh_process(tmp_path):
    """Every builder (each in one scaling, so every scaling occurs) and every scaling on dnn and conv_lstm, with
    seasonal context and with a linear skip reaching past the window: weights set, saved, and reloaded
    (safe_mode) in one child process. Weights moved off their initial values stand in for training, and forecasts
    are eager calls: a model's train and predict functions would take seconds each to trace, and what is tested here
    is the saved file."""
    rng = np.random.RandomState(0)
    cases = [(name, SCALINGS[index % len(SCALINGS)], 0, 0) for index, name in enumerate(sorted(BUILDERS))]
    cases += [(name, scaling, 0, 0) for name in ("dnn", "conv_lstm") for scaling in SCALINGS]
    cases = sorted(set(cases)) + [("conv_lstm", "window", 2, 0), ("dnn", "last_value", 1, 0)]
    cases += [("gru", scaling, 0, 20) for scaling in SCALINGS]
    expected = {}
    for name, scaling, seasons, ar_skip in cases:
        frame = framing(scaling, seasons=seasons, halfwidth=2, season_length=7, ar_skip=ar_skip, season_std=3.0)
        model = compile_model(BUILDERS[name](framing=frame, **SMALL[name]), "huber", "adam", 1e-3)
        x = rng.normal(50, 10, size=(8, frame.input_length)).astype(np.float32)
        model.set_weights([w + rng.normal(0, 0.1, np.shape(w)).astype(np.float32) for w in model.get_weights()])
        prediction = keras.ops.convert_to_numpy(model(x, training=False))
        assert prediction.shape == (8, 1), (name, scaling)
        assert not any(type(layer).__name__ == "Lambda" for layer in model.layers)
        key = f"{name}-{scaling}-{seasons}-{ar_skip}"
        model.save(tmp_path / f"{key}.keras")
        np.save(tmp_path / f"{key}-x.npy", x)
        expected[key] = prediction.ravel().tolist()
    code = (
        "import json, sys, numpy as np, keras; from pathlib import Path; d = Path(sys.argv[1]); out = {}\n"
        "for key in json.loads(sys.argv[2]):\n"
        "    m = keras.saving.load_model(d / f'{key}.keras')\n"  # safe_mode=True is Keras' default
        "    out[key] = keras.ops.convert_to_numpy(m(np.load(d / f'{key}-x.npy'), training=False)).ravel().tolist()\n"
        "print(json.dumps(out))"
    )
    # Saved here on TensorFlow, reloaded on every installed backend: a model registered on one loads on the others.
    for backend in [b for b in BACKENDS if installed(b)]:
        run = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path), json.dumps(list(expected))],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "KERAS_BACKEND": backend},
        )
        assert run.returncode == 0, run.stderr[-2000:]
        reloaded = json.loads(run.stdout.strip().splitlines()[-1])
        for key, values in expected.items():
            np.testing.assert_allclose(reloaded[key], values, rtol=1e-4, atol=1e-4, err_msg=f"{key} on {backend}")


def test_standard_scaling_lives_inside_the_model():
    """An untrained linear model starts near the training mean: inputs are standardised, outputs scaled back."""
    model = BUILDERS["linear"](framing=framing("standard", window_size=3, mean=1000.0, std=5.0))
    layers = {layer.name: layer for layer in model.layers}
    assert layers["forecast"].get_config()["offset"] == pytest.approx(1000.0)
    assert layers["forecast"].get_config()["scale"] == pytest.approx(5.0)
    x = np.full((1, 3), 1000.0, dtype=np.float32)
    assert model.predict(x, verbose=0)[0, 0] == pytest.approx(1000.0, abs=1e-3)


def _zero_head(model):
    """Set the last Dense unit to output 0, whatever it reads."""
    head = model.get_layer("forecast_scaled")
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])
    return model


def test_last_value_scaling_with_a_zero_network_is_the_naive_forecast():
    """A network that outputs 0 forecasts the window's last value, at any level: the change is added back."""
    model = _zero_head(BUILDERS["dnn"](framing=framing("last_value", window_size=5), **SMALL["dnn"]))
    x = np.array([[1, 2, 3, 4, 5], [1e4, 1e4 + 3, 1e4 - 2, 1e4, 1e4 + 7]], dtype=np.float32)
    np.testing.assert_allclose(model.predict_on_batch(x).ravel(), [5, 1e4 + 7], rtol=1e-6)


def test_window_scaling_is_reversible_instance_normalisation():
    """A zero network forecasts each window's own mean; shifting and stretching a window shifts and stretches the forecast."""
    model = BUILDERS["dnn"](framing=framing("window", window_size=6, std=3.0), **SMALL["dnn"])
    x = np.random.RandomState(1).normal(0, 1, size=(4, 6)).astype(np.float32)
    base = model.predict_on_batch(x).ravel()
    moved = model.predict_on_batch(x * 10 + 500).ravel()
    np.testing.assert_allclose(moved, base * 10 + 500, rtol=1e-3, atol=1e-2)
    zero = _zero_head(model).predict_on_batch(x).ravel()
    np.testing.assert_allclose(zero, x.mean(axis=1), atol=1e-4)
    flat = model.predict_on_batch(np.full((1, 6), 7.0, dtype=np.float32)).ravel()
    assert np.all(np.isfinite(flat)) and flat[0] == pytest.approx(7.0, abs=1e-4)  # a flat window divides by no zero


def test_seasonal_context_reads_the_values_around_each_past_season():
    """With seasons=2, halfwidth 1, season 10 and window 3, the network reads t-21..t-19, t-11..t-9, then t-3..t-1."""
    frame = framing("standard", window_size=3, seasons=2, halfwidth=1, season_length=10, mean=0.0, std=1.0)
    assert frame.input_length == input_length(3, 2, 1, 10) == 21
    model = BUILDERS["linear"](framing=frame)
    x = np.arange(1, 22, dtype=np.float32)[None, :]  # x[0, j] is the value at t - 21 + j
    features = model.get_layer("context_and_window").output
    import keras

    probe = keras.Model(model.inputs, features)
    assert probe.predict_on_batch(x).ravel().tolist() == [1.0, 2.0, 3.0, 11.0, 12.0, 13.0, 19.0, 20.0, 21.0]


def test_seasonal_scaling_with_a_zero_network_is_the_seasonal_naive_forecast():
    """The network reads seasonal differences; a zero output repeats last season, over a horizon past one season too."""
    frame = framing("seasonal", window_size=3, season_length=4, horizon=6, season_std=2.5)
    assert frame.input_length == input_length(3, 0, 0, 4, "seasonal") == 7  # the window, and one season to difference it
    model = _zero_head(BUILDERS["dnn"](framing=frame, **SMALL["dnn"]))
    x = np.array([[5, 1, 2, 3, 4, 10, 20], [0, 0, 0, 1e4, 1e4 + 1, 1e4 + 2, 1e4 + 3]], dtype=np.float32)
    season = x[:, -4:]
    np.testing.assert_allclose(model.predict_on_batch(x), np.concatenate([season, season[:, :2]], axis=1), rtol=1e-6)
    import keras

    probe = keras.Model(model.inputs, model.get_layer("in_season_units").output)
    np.testing.assert_allclose(probe.predict_on_batch(x[:1]), [[(4 - 5) / 2.5, (10 - 1) / 2.5, (20 - 2) / 2.5]], rtol=1e-6)


def test_profile_scaling_with_a_zero_network_is_naive_plus_the_matched_seasons_average_change():
    """On `data=elnino` the training split's seasonal profile, with each window's phase matched from its own changes,
    forecasts the test tail as Holt-Winters with fixed seasonal indices does (`ets`: 0.381): the model with its
    network silenced is that forecast (the NumPy reference), over a horizon too; the network reads the window
    deseasonalised; the profile's layers are not trained; and a pure season at any level and phase is forecast
    exactly."""
    import keras

    from data.baselines import exponential_smoothing
    from data.sources import csv_series
    from models.profile import profile_forecast, seasonal_profile

    series = csv_series("data/series/elnino_monthly.csv", "sst", "month").astype(np.float64)
    test = np.arange(len(series) - 146, len(series))
    profile, spread = seasonal_profile(series[:586], 12)
    frame = framing("profile", window_size=24, season_length=12, ar_skip=36, profile=profile, profile_std=spread, horizon=3)
    assert frame.input_length == 36  # the skip's lags; no seasonal context blocks
    model = _zero_head(BUILDERS["dnn"](framing=frame, **SMALL["dnn"]))
    assert {w.path.split("/")[0] for w in model.non_trainable_weights} == {"phase_likelihood", "profile_path", "profile_offsets"}
    windows = np.stack([series[t - 36 : t] for t in test]).astype(np.float32)
    forecasts = model.predict_on_batch(windows)
    np.testing.assert_allclose(forecasts, profile_forecast(windows, profile, spread, 3), atol=1e-3)
    ets = exponential_smoothing(series, 586, 12)[test]
    assert np.mean(np.abs(forecasts[:, 0] - series[test])) == pytest.approx(np.mean(np.abs(ets - series[test])), abs=2e-3)

    season = 10 * np.sin(2 * np.pi * np.arange(48) / 12)
    changes = tuple(10 * np.sin(2 * np.pi * j / 12) - 10 * np.sin(2 * np.pi * (j - 1) / 12) for j in range(12))
    pure = framing("profile", window_size=24, season_length=12, profile=changes)
    pure_model = _zero_head(BUILDERS["dnn"](framing=pure, **SMALL["dnn"]))
    shifted = np.stack([season[s : s + 24] + level for s, level in ((0, 0.0), (5, 500.0), (17, -3.0))]).astype(np.float32)
    expected = [season[s + 24] + level for s, level in ((0, 0.0), (5, 500.0), (17, -3.0))]
    np.testing.assert_allclose(pure_model.predict_on_batch(shifted).ravel(), expected, atol=1e-3)
    probe = keras.Model(pure_model.inputs, pure_model.get_layer("in_profile_units").output)
    np.testing.assert_allclose(probe.predict_on_batch(shifted), 0.0, atol=1e-3)  # nothing left once deseasonalised


@pytest.mark.parametrize("scaling", ["last_value", "seasonal", "profile"])
def test_each_block_of_a_quantile_head_starts_from_the_models_own_forecast(scaling):
    """A quantile head (`output_blocks`: one forecast of the horizon per quantile, side by side) restores every block
    as the plain model restores its one: silenced, each block is the naive / seasonal naive / profile forecast of
    steps 1..h, not of steps h+1.. (a skip too: one unit per output)."""
    import dataclasses

    frame = framing(scaling, window_size=6, season_length=4, horizon=3, season_std=2.0, ar_skip=8)
    single = _zero_head(BUILDERS["dnn"](framing=frame, **SMALL["dnn"]))
    blocks = _zero_head(BUILDERS["dnn"](framing=dataclasses.replace(frame, output_blocks=2), **SMALL["dnn"]))
    assert blocks.get_layer("ar_skip").units == 6
    x = np.random.RandomState(3).normal(20, 5, size=(5, frame.input_length)).astype(np.float32)
    one = single.predict_on_batch(x)
    np.testing.assert_allclose(blocks.predict_on_batch(x), np.concatenate([one, one], axis=1), rtol=1e-5)


@pytest.mark.parametrize("scaling", ["standard", "last_value", "window"])
def test_the_ar_skip_is_linear_in_the_lags_and_reaches_past_the_window(scaling):
    """With the network silenced, a skip weighted on one lag alone forecasts that lag's value in every scaling: the
    skip is a linear autoregression in the series' units. It starts at zero (the model starts as the network alone)."""
    frame = framing(scaling, window_size=3, ar_skip=6, mean=40.0, std=7.0, step_std=1.5)
    assert frame.input_length == 6  # the skip's lags reach past the 3-point window
    model = _zero_head(BUILDERS["dnn"](framing=frame, **SMALL["dnn"]))
    skip = model.get_layer("ar_skip")
    assert not np.any(skip.get_weights()[0])
    kernel = np.zeros((6, 1), dtype=np.float32)
    # the value 5 points before the forecast time; `last_value` reads lags in units of their typical spread
    # (step_std * sqrt((lags + 1) / 2)) but restores in step units, so its unit weight is that ratio
    kernel[1, 0] = np.sqrt((6 + 1) / 2) if scaling == "last_value" else 1.0
    skip.set_weights([kernel, np.zeros(1, dtype=np.float32)])
    x = np.array([[3, 17, 4, 8, 9, 12], [100, -50, 2, 0, 1, 1]], dtype=np.float32)
    np.testing.assert_allclose(model.predict_on_batch(x).ravel(), [17, -50], rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_loss_and_optimizer_compiles(loss, optimizer):
    model = compile_model(BUILDERS["linear"](framing=framing(window_size=3)), loss, optimizer, 1e-3, 0.9)
    assert model.optimizer.__class__.__name__.lower() == optimizer
