"""A Hyperband continuation that reuses its predecessor's compiled model trains exactly as Keras Tuner's fresh model
would: best checkpoint loaded, optimizer restarted at step 0."""

import numpy as np
import pytest

from models import BUILDERS, compile_model
from models.framing import Framing
from search.tuner import TrainedModels, restart_optimizer


class _NoLogging:
    def drain(self) -> None:
        pass


def _lstm(optimizer: str):
    framing = Framing(12, "standard", 0, 0, 0, 50.0, 10.0, 2.0)
    model = BUILDERS["conv_lstm"](framing=framing, filters=4, kernel_size=3, lstm_units=4, lstm_layers=1)
    return compile_model(model, "huber", optimizer, 1e-2)


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop", "adagrad"])
def test_a_reused_model_continues_as_a_fresh_one_loaded_from_the_checkpoint(tmp_path, optimizer):
    import keras

    rng = np.random.default_rng(0)
    x = (50 + 10 * rng.standard_normal((64, 12))).astype("float32")
    y = x[:, -1:] + rng.standard_normal((64, 1)).astype("float32")
    fit = dict(batch_size=16, shuffle=False, verbose=0, validation_data=(x[:16], y[:16]))
    keras.utils.set_random_seed(0)
    first = _lstm(optimizer)
    first.fit(x, y, epochs=2, **fit)
    checkpoint = tmp_path / "best.weights.h5"
    first.save_weights(checkpoint)  # what Keras Tuner's checkpoint holds: the weights and the optimizer's state

    fresh = _lstm(optimizer)  # Keras Tuner's way: a new model, the checkpoint loaded (its optimizer is not built yet)
    fresh.load_weights(checkpoint)
    expected = fresh.fit(x, y, epochs=4, initial_epoch=2, **fit).history

    kept = TrainedModels(_NoLogging(), factor=3)
    kept.keep("0003", first, (2, 0), 1.0)
    reused = kept.take("0003")
    assert reused is first and kept.take("0003") is None  # taken once
    reused.load_weights(checkpoint)  # restores the optimizer's state too, since this one is built
    assert int(reused.optimizer.iterations) > 0
    assert restart_optimizer(reused)
    assert int(reused.optimizer.iterations) == 0
    got = reused.fit(x, y, epochs=4, initial_epoch=2, **fit).history
    np.testing.assert_allclose(got["loss"], expected["loss"], rtol=1e-6)
    np.testing.assert_allclose(got["val_mae"], expected["val_mae"], rtol=1e-6)


def test_only_the_models_hyperband_is_likely_to_continue_are_kept():
    kept = TrainedModels(_NoLogging(), factor=3)
    for trial_id, score in (("0", 5.0), ("1", 4.0), ("2", 6.0), ("3", 3.0), ("4", 7.0), ("5", 4.5), ("6", 9.0)):
        kept.keep(trial_id, object(), (2, 0), score)
    # 7 trials of bracket 2, round 0 seen: the best ceil(7/3) = 3 are kept, the rest dropped as they fell out.
    assert len(kept) == 3 and [kept.take(t) is not None for t in ("3", "1", "5", "0")] == [True, True, True, False]
    kept.keep("7", object(), (2, 1), 1.0)  # another round is ranked on its own
    assert kept.take("7") is not None and kept.take(None) is None
