"""What the network sees of a raw input window, and how its output becomes a forecast again.

Two choices, both hyperparameters of every space:

- `scaling`: `standard` standardises with the training split's mean and std (the course's way; a
  network must extrapolate when the series leaves its training range); `last_value` feeds the window
  minus its last value, in units of the training split's one-step changes, and adds the predicted
  change back, so a network that outputs zero is the naive forecast; `window` standardises each
  window by its own mean and std and de-standardises the output with them (reversible instance
  normalisation).
- seasonal context: `seasons` past seasons (0, 1 or 2) of `2 * season_halfwidth + 1` values each,
  centred on `t - k * season_length`, appended before the recent `window_size` values, oldest first.
  The model's raw input then spans `input_length` points, however long the season.

Everything is built from Keras' own layers (no `Lambda`, no custom class), so a saved model maps raw
windows to raw forecasts and loads with `safe_mode=True` wherever Keras is installed, MLflow's pyfunc
serving included. Keras is imported when a model is built: planning never imports TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

SCALINGS = ("standard", "last_value", "window")

WINDOW_EPSILON = 1e-4
"""Added to each window's variance (in units of the training std) so a flat window divides by no zero."""


def input_length(window_size: int, seasons: int = 0, season_halfwidth: int = 0, season_length: int = 0) -> int:
    """Raw points before the forecast time that a model reads: the window, or back to its oldest seasonal value."""
    if seasons <= 0:
        return window_size
    return max(window_size, seasons * season_length + season_halfwidth)


@dataclass(frozen=True)
class Framing:
    """Everything besides the architecture that shapes a model's input and output.

    `mean`, `std` and `step_std` (std of one-step changes) come from the training split only;
    `horizon` is how many values the model forecasts from each window (one output unit each).
    """

    window_size: int
    scaling: str = "standard"
    seasons: int = 0
    season_halfwidth: int = 0
    season_length: int = 0
    mean: float = 0.0
    std: float = 1.0
    step_std: float = 1.0
    horizon: int = 1

    @property
    def input_length(self) -> int:
        return input_length(self.window_size, self.seasons, self.season_halfwidth, self.season_length)

    def slices(self) -> list[tuple[int, int]]:
        """`(start, stop)` positions in the raw input of each block the network sees, oldest first."""
        length = self.input_length
        blocks = []
        for k in range(self.seasons, 0, -1):
            centre = length - k * self.season_length
            blocks.append((centre - self.season_halfwidth, centre + self.season_halfwidth + 1))
        blocks.append((length - self.window_size, length))
        return blocks


def framed_input(framing: Framing, sequence: bool):
    """`(inputs, x, restore)`: the raw-window `Input`, the scaled features, and `restore(y)` that
    turns the network's output `y` (one unit per horizon step) into the forecast in the series' units:
    every step is scaled back the same way (`last_value`: each step is a change from the window's last value).

    `x` has shape `(n,)`, or `(n, 1)` with `sequence=True` for recurrent and conv layers.
    """
    import keras

    layers = keras.layers
    inputs = keras.Input(shape=(framing.input_length,), name="window")
    raw = _selected(inputs, framing)
    width = raw.shape[-1]
    if framing.scaling == "standard":
        x = layers.Normalization(mean=framing.mean, variance=framing.std**2, name="standardize")(raw)

        def restore(y):
            return layers.Rescaling(scale=framing.std, offset=framing.mean, name="forecast")(y)

    elif framing.scaling == "last_value":
        last = _last_value(inputs, framing.input_length)
        changes = layers.Subtract(name="minus_last_value")([raw, last])
        x = layers.Rescaling(1.0 / framing.step_std, name="in_step_units")(changes)

        def restore(y):
            change = layers.Rescaling(framing.step_std, name="change")(y)
            return layers.Add(name="forecast")([change, last])

    elif framing.scaling == "window":
        x, restore = _window_standardised(raw, width, framing.std)
    else:
        raise ValueError(f"unknown scaling {framing.scaling!r}: use one of {', '.join(SCALINGS)}")
    if sequence:
        x = layers.Reshape((width, 1), name="as_sequence")(x)
    return inputs, x, restore


def _selected(inputs, framing: Framing):
    """The raw values the network reads: the input itself, or its seasonal blocks and window concatenated."""
    import keras

    layers = keras.layers
    length = framing.input_length
    blocks = framing.slices()
    if blocks == [(0, length)]:
        return inputs
    sequence = layers.Reshape((length, 1), name="raw_sequence")(inputs)
    parts = []
    for index, (start, stop) in enumerate(blocks):
        cropped = layers.Cropping1D((start, length - stop), name=f"block_{index}")(sequence)
        parts.append(layers.Reshape((stop - start,), name=f"block_{index}_flat")(cropped))
    return layers.Concatenate(name="context_and_window")(parts)


def _last_value(inputs, length: int):
    """The last raw value of each window, shape `(1,)`."""
    import keras

    layers = keras.layers
    sequence = layers.Reshape((length, 1), name="last_value_sequence")(inputs)
    return layers.Reshape((1,), name="last_value")(layers.Cropping1D((length - 1, 0), name="last_value_crop")(sequence))


def _window_standardised(raw, width: int, std: float):
    """Reversible instance normalisation from built-in layers.

    In units of the training std, `LayerNormalization` (no centre, no scale) gives `(v - m) / sqrt(var + eps)`;
    the window's mean `m` is a pooled average, and its std as `mean((v - m) * normalised) = var / sqrt(var + eps)`
    (a `Dot`), which `restore` multiplies back.
    """
    import keras

    layers = keras.layers
    units = layers.Rescaling(1.0 / std, name="in_train_std")(raw)
    x = layers.LayerNormalization(axis=-1, center=False, scale=False, epsilon=WINDOW_EPSILON, name="window_standardize")(units)
    mean = layers.GlobalAveragePooling1D(name="window_mean")(layers.Reshape((width, 1), name="window_sequence")(units))
    centred = layers.Subtract(name="window_centred")([units, mean])
    spread = layers.Rescaling(1.0 / width, name="window_std")(layers.Dot(axes=1, name="window_var_over_std")([centred, x]))

    def restore(y):
        scaled = layers.Multiply(name="times_window_std")([y, spread])
        return layers.Rescaling(std, name="forecast")(layers.Add(name="plus_window_mean")([scaled, mean]))

    return x, restore
