"""The learning-rate range test's reading, on curves whose answer is known, and its settings' checks."""

import numpy as np
import pytest

from data.errors import UserError
from search.plan.lr_range import check_settings, geometric_schedule, suggest
from search.plan.planning import Request, make_plan
from search.plan.space import reference_values, validate_space
from tests.test_spaces import compose_config, specs_of


def test_the_schedule_is_the_courses_sweep():
    rates = geometric_schedule(1e-8, 1e-3, 100)
    np.testing.assert_allclose(rates, 1e-8 * 10 ** (np.arange(100) / 20))


def _curve(steepest_at: float, diverge_at: float, steps: int = 200, noise: float = 0.0, seed: int = 0):
    """A loss that falls most steeply at `steepest_at`, bottoms out, then blows up past `diverge_at`."""
    rates = geometric_schedule(1e-7, 1.0, steps)
    x = np.log10(rates)
    loss = 10 - 8 / (1 + np.exp(-3 * (x - np.log10(steepest_at)))) + np.exp(3 * (x - np.log10(diverge_at)))
    return rates, loss + np.random.default_rng(seed).normal(0, noise, steps)


@pytest.mark.parametrize("seed", range(5))
def test_the_suggestion_is_where_the_loss_falls_fastest_despite_noisy_batches(seed):
    rates, loss = _curve(steepest_at=1e-3, diverge_at=0.1, noise=1.0, seed=seed)
    found = suggest(rates, loss, beta=0.9)
    assert 10**-3.3 < found.learning_rate < 10**-2.7
    assert found.low == pytest.approx(found.learning_rate / 10) and found.high == pytest.approx(found.learning_rate * 3)
    assert found.learning_rate < found.min_loss_learning_rate < 0.1
    assert found.warning is None


def test_a_diverging_sweep_is_read_from_the_part_before_divergence():
    rates, loss = _curve(steepest_at=1e-4, diverge_at=1e-2)
    loss[150:] = np.nan
    found = suggest(rates, loss, beta=0.9)
    assert found.diverged_at == pytest.approx(rates[150])
    assert 10**-4.3 < found.learning_rate < 10**-3.7
    assert found.high <= rates[149] and len(found.smoothed) == 150


def test_a_curve_already_falling_at_the_start_warns_to_lower_the_start():
    rates, loss = _curve(steepest_at=1e-8, diverge_at=1e-3)
    assert "lower lr_find.start" in suggest(rates, loss, beta=0.9).warning


@pytest.mark.parametrize(
    "loss,message",
    [
        (np.linspace(1, 5, 50), "the loss never fell"),
        (np.r_[1.0, np.nan, np.full(48, np.nan)], "diverged after 1 steps"),
    ],
    ids=["rising", "diverged at once"],
)
def test_an_unreadable_curve_is_one_clear_error(loss, message):
    with pytest.raises(UserError, match=message):
        suggest(geometric_schedule(1e-7, 1.0, 50), loss, beta=0.9)


@pytest.mark.parametrize(
    "override,message",
    [
        ("lr_find.start=0", "need 0 < start < end"),
        ("lr_find.end=1e-9", "need 0 < start < end"),
        ("lr_find.steps=2", "lr_find.steps=2 is too few"),
        ("lr_find.smoothing=1", "lr_find.smoothing=1 must be in [0, 1)"),
        ("lr_find.stop_factor=0.5", "lr_find.stop_factor=0.5 must be > 1"),
        ("lr_find.high_factor=0.5", "need 0 < low_factor <= 1 <= high_factor"),
        ("space.window_size.range=auto", "only space.learning_rate.range=auto exists"),
        ("space.learning_rate.value=0.01", "drop space.learning_rate.range=auto"),
    ],
)
def test_bad_lr_find_settings_are_refused_before_training(override, message):
    cfg = compose_config("+space=dnn", "mode=lr_find", "space.learning_rate.range=auto", override)
    with pytest.raises(UserError) as error:
        make_plan(Request.of(cfg))
    assert message in str(error.value)


def test_settings_are_checked_only_when_the_range_test_runs():
    cfg = compose_config("+space=dnn", "lr_find.steps=2")
    assert make_plan(Request.of(cfg)).specs["model"]["value"] == "dnn"
    with pytest.raises(UserError):
        check_settings(cfg.lr_find)


def test_the_reference_configuration_is_defaults_then_keras_tuner_defaults_then_midpoints():
    values = reference_values(specs_of(compose_config("+space=conv_lstm", "space.filters.default=64")))
    assert values["filters"] == 64  # default set on the command line
    assert values["batch_size"] == 32 and values["bidirectional"] is False  # first choice, False
    assert values["window_size"] == 40 and values["lstm_units"] == 32  # middle candidates of 20..60/10, 16..64/16
    assert values["learning_rate"] == pytest.approx(1e-3)  # geometric mid-point of 1e-4..1e-2
    assert values["model"] == "conv_lstm" and values["optimizer"] == "adam"
    dnn = reference_values(
        validate_space({**specs_of(compose_config("+space=dnn")), "window_size": {"kind": "fixed", "value": 7}})
    )
    assert dnn["window_size"] == 7 and dnn["optimizer"] == "adam" and dnn["loss"] == "huber"
