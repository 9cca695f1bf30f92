"""Every builder maps raw windows to raw forecasts and reloads with Keras' safe_mode=True."""

import subprocess
import sys

import numpy as np
import pytest

from models import BUILDER_ARGUMENTS, BUILDERS, compile_model
from models.names import LOSSES, OPTIMIZERS

SMALL = {
    "dnn": {"dense_units": 4, "dense_layers": 2},
    "rnn": {"rnn_units": 4, "rnn_layers": 2},
    "lstm": {"lstm_units": 4, "lstm_layers": 2, "bidirectional": True},
    "gru": {"gru_units": 4, "gru_layers": 1, "bidirectional": True},
    "conv_lstm": {"filters": 4, "kernel_size": 3, "lstm_units": 4, "lstm_layers": 2, "dense_units": 4},
    "linear": {},
}


def test_registry_names_match_builder_signatures():
    import inspect

    for name, builder in BUILDERS.items():
        params = set(inspect.signature(builder).parameters) - {"mean", "std", "window_size"}
        assert params == set(BUILDER_ARGUMENTS[name]), name


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_output_shape_and_safe_reload_in_a_fresh_process(name, tmp_path):
    model = BUILDERS[name](window_size=12, mean=50.0, std=10.0, **SMALL[name])
    compile_model(model, "huber", "adam", 1e-3)
    x = np.random.RandomState(0).normal(50, 10, size=(5, 12)).astype(np.float32)
    expected = model.predict(x, verbose=0)
    assert expected.shape == (5, 1)
    assert not any(type(layer).__name__ == "Lambda" for layer in model.layers)
    path = tmp_path / "model.keras"
    model.save(path)
    np.save(tmp_path / "x.npy", x)
    code = (
        "import numpy as np, keras; "
        f"m = keras.saving.load_model(r'{path}'); "  # safe_mode=True is Keras' default
        f"print(np.abs(m.predict(np.load(r'{tmp_path / 'x.npy'}'), verbose=0) - np.load(r'{tmp_path / 'e.npy'}')).max())"
    )
    np.save(tmp_path / "e.npy", expected)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout.strip().splitlines()[-1]) < 1e-4


def test_scaling_lives_inside_the_model():
    """An untrained linear model starts near the training mean: inputs are standardised, outputs scaled back."""
    model = BUILDERS["linear"](window_size=3, mean=1000.0, std=5.0)
    layers = {layer.name: layer for layer in model.layers}
    assert layers["forecast"].get_config()["offset"] == pytest.approx(1000.0)
    assert layers["forecast"].get_config()["scale"] == pytest.approx(5.0)
    x = np.full((1, 3), 1000.0, dtype=np.float32)
    assert model.predict(x, verbose=0)[0, 0] == pytest.approx(1000.0, abs=1e-3)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_loss_and_optimizer_compiles(loss, optimizer):
    model = compile_model(BUILDERS["linear"](window_size=3), loss, optimizer, 1e-3, 0.9)
    assert model.optimizer.__class__.__name__.lower() == optimizer
    assert "mae" in str(model.metrics_names) or model.compiled_metrics is not None
