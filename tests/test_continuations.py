"""A Hyperband continuation that reuses its predecessor's compiled model trains exactly as Keras Tuner's fresh model
would: best checkpoint loaded, optimizer restarted at step 0."""

import numpy as np
import pytest

from models import BUILDERS, compile_model
from models.framing import Framing
from search.tune.tuner import TrainedModels, restart_optimizer


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

    kept = TrainedModels(_NoLogging(), max_epochs=27, factor=3)
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


def test_only_the_models_hyperband_will_continue_are_kept():
    import keras_tuner

    oracle = keras_tuner.oracles.HyperbandOracle(objective="val_mae", max_epochs=27, factor=3)
    kept = TrainedModels(_NoLogging(), max_epochs=27, factor=3)
    for bracket in range(4):  # the next round's size, as Keras Tuner's Hyperband sizes it
        for round_ in range(bracket):
            assert kept.continued(bracket, round_) == oracle._get_size(bracket, round_ + 1), (bracket, round_)
    assert kept.continued(3, 0) == 9
    scores = [5.0, 4.0, 6.0, 3.0, 7.0, 4.5, 9.0, 1.0, 8.0, 2.0, 6.5, 5.5]
    for index, score in enumerate(scores):
        kept.keep(str(index), object(), (2, 0), score)  # bracket 2 sends 4 trials of round 0 on
    assert kept.continued(2, 0) == 4
    assert len(kept) == 4 and all(kept.take(t) is not None for t in ("7", "9", "3", "1"))  # the 4 best: 1.0 ... 4.0
    kept.keep("12", object(), (2, 1), 1.0)  # another round is ranked on its own
    assert kept.take("12") is not None and kept.take(None) is None
