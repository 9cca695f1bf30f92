"""What the network sees of a raw input window, and how its output becomes a forecast again.

Three choices, hyperparameters of every space:

- `scaling`: `standard` standardises with the training split's mean and std (the course's way; a
  network must extrapolate when the series leaves its training range); `last_value` feeds the window
  minus its last value, in units of the training split's one-step changes, and adds the predicted
  change back, so a network that outputs zero is the naive forecast; `window` standardises each
  window by its own mean and std and de-standardises the output with them (reversible instance
  normalisation); `seasonal` feeds the window's seasonal differences (`v[t] - v[t - season_length]`, in
  units of the training split's), and adds each predicted difference to the value one season before the
  step it forecasts, so a network that outputs zero is the seasonal naive forecast (as `last_value` makes
  zero the naive one). The seasonal difference already holds last season, so this scaling reads no
  seasonal context blocks. `profile` (ES-RNN's idea: the network learns what exponential smoothing's
  seasonal indices leave) keeps the training split's seasonal profile, the average one-step change into each
  phase of the season; each window's phase is matched to it (a Gaussian likelihood of the window's changes
  under each of the `season_length` phases, a softmax over them), the window is deseasonalised with the matched
  profile, and each output is a change from the last value beyond the profile's path: a network that outputs
  zero forecasts the last value plus the season's average change, which is what Holt-Winters does with fixed
  seasonal indices. The phase
  comes from the input itself, a whole season of changes at least (`PROFILE_MATCH_LIMIT`), so the model still
  maps raw inputs to forecasts; it reads no seasonal context blocks either. Where the season is long and its
  seasons few, the profile is smoothed, keeping its breaks (`models.profile`).
- seasonal context: `seasons` past seasons (0, 1 or 2) of `2 * season_halfwidth + 1` values each,
  centred on `t - k * season_length`, appended before the recent `window_size` values, oldest first.
  The model's raw input then spans `input_length` points, however long the season.
- `ar_skip`: a linear autoregressive skip beside the network (LSTNet's "highway", DLinear's linear part):
  one `Dense` over the last `ar_skip` values, in the scaling the model uses, added to the network's
  output. It starts at zero, so the model starts as the network alone, and a network that learns nothing
  still has a least-squares autoregression (`ar_changes` under `last_value`). Its lags may reach past the
  window: a skip over a whole season while the network sees a short window.

Everything is built from Keras' own layers (no `Lambda`, no custom class), so a saved model maps raw
windows to raw forecasts and loads with `safe_mode=True` wherever Keras is installed, MLflow's pyfunc
serving included. Keras is imported when a model is built: planning never imports TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SCALINGS = ("standard", "last_value", "window", "seasonal", "profile")
SEASONAL_SCALINGS = ("seasonal", "profile")
"""Scalings that need `data.season_length`."""

WINDOW_EPSILON = 1e-4
"""Added to each window's variance (in units of the training std) so a flat window divides by no zero."""


PROFILE_MATCH_LIMIT = 1001
"""Most raw points `profile` scaling reads to match a window's phase: a whole season and one more, up to this (the
matching weights grow with season x points read)."""


def input_length(
    window_size: int,
    seasons: int = 0,
    season_halfwidth: int = 0,
    season_length: int = 0,
    scaling: str = "standard",
    ar_skip: int = 0,
) -> int:
    """Raw points before the forecast time that a model reads: the window (or the skip's lags, if longer), back to its
    oldest seasonal value; under `seasonal` scaling one season more, to difference the oldest point read; under
    `profile` at least a whole season of changes, to match the window's phase (the network still sees the window)."""
    if scaling == "seasonal" and season_length > 0:
        return max(window_size, ar_skip) + season_length
    if scaling == "profile":
        return max(window_size, ar_skip, min(season_length + 1, PROFILE_MATCH_LIMIT))
    if seasons <= 0:
        return max(window_size, ar_skip)
    return max(window_size, seasons * season_length + season_halfwidth, ar_skip)


@dataclass(frozen=True)
class Framing:
    """Everything besides the architecture that shapes a model's input and output.

    `mean`, `std`, `step_std` (std of one-step changes), `season_std` (std of seasonal differences) and, for
    `profile` scaling, `profile` and `profile_std` (`models.profile.seasonal_profile`) come from the training split only;
    `horizon` is how many values the model forecasts from each window (one output unit each); `ar_skip` the
    lags of the linear skip (0: none); `output_blocks` how many forecasts of the horizon the model gives side by
    side (a quantile head: one block per quantile, `outputs` units in all, each block restored like the first).
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
    ar_skip: int = 0
    season_std: float = 1.0
    profile: tuple[float, ...] = ()
    profile_std: float = 1.0
    output_blocks: int = 1

    @property
    def outputs(self) -> int:
        """Output units: one per horizon step in each block."""
        return self.horizon * self.output_blocks

    @property
    def input_length(self) -> int:
        return input_length(self.window_size, self.seasons, self.season_halfwidth, self.season_length, self.scaling, self.ar_skip)

    def slices(self) -> list[tuple[int, int]]:
        """`(start, stop)` positions in the raw input of each block the network sees, oldest first (scalings that read
        raw values; `seasonal` and `profile` build their own inputs)."""
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
    every step is scaled back the same way (`last_value`: each step is a change from the window's last value;
    `seasonal`: from the value one season before it; `profile`: from the last value plus the matched profile's
    path), the `ar_skip` term added in the same units.

    `x` has shape `(n,)`, or `(n, 1)` with `sequence=True` for recurrent and conv layers.
    """
    import keras

    layers = keras.layers
    length = framing.input_length
    inputs = keras.Input(shape=(length,), name="window")
    if framing.scaling == "seasonal":
        differences = _seasonal_differences(inputs, framing)
        x, restore = _seasonal(inputs, differences, framing)
        width = framing.window_size
        lags = _recent(differences, length - framing.season_length, framing.ar_skip, "ar_lags") if framing.ar_skip else None
    elif framing.scaling == "profile":
        x, restore, lags = _profiled(inputs, framing)
        width = framing.window_size
    else:
        raw = _selected(inputs, framing)
        width = raw.shape[-1]
        lags = _recent(inputs, length, framing.ar_skip, "ar_lags_raw") if framing.ar_skip else None
    if framing.scaling == "standard":
        x = layers.Normalization(mean=framing.mean, variance=framing.std**2, name="standardize")(raw)
        if lags is not None:
            lags = layers.Rescaling(1.0 / framing.std, offset=-framing.mean / framing.std, name="ar_lags")(lags)

        def restore(y):
            return layers.Rescaling(scale=framing.std, offset=framing.mean, name="forecast")(y)

    elif framing.scaling == "last_value":
        last = _last_value(inputs, length)
        changes = layers.Subtract(name="minus_last_value")([raw, last])
        x = layers.Rescaling(1.0 / framing.step_std, name="in_step_units")(changes)
        if lags is not None:
            lag_changes = layers.Subtract(name="ar_lags_minus_last_value")([lags, last])
            # A change over k steps spreads like sqrt(k) one-step changes: scaled so the average lag has about unit
            # spread, as under `standard`, else plain SGD on the skip diverges (24 lags: ~300x the squared input).
            lag_spread = framing.step_std * math.sqrt((framing.ar_skip + 1) / 2)
            lags = layers.Rescaling(1.0 / lag_spread, name="ar_lags")(lag_changes)

        def restore(y):
            change = layers.Rescaling(framing.step_std, name="change")(y)
            return layers.Add(name="forecast")([change, last])

    elif framing.scaling == "window":
        x, restore = _window_standardised(raw, width, framing, lags)
        lags = None  # added by the window's own restore, after its std is multiplied back
    elif framing.scaling not in SEASONAL_SCALINGS:
        raise ValueError(f"unknown scaling {framing.scaling!r}: use one of {', '.join(SCALINGS)}")
    if sequence:
        x = layers.Reshape((width, 1), name="as_sequence")(x)
    if lags is None:
        return inputs, x, restore

    def restore_with_skip(y):
        return restore(layers.Add(name="plus_ar_skip")([y, _skip(lags, framing.outputs)]))

    return inputs, x, restore_with_skip


def _skip(lags, units: int):
    """The linear autoregressive skip: one `Dense` over the scaled lags, starting at zero."""
    import keras

    return keras.layers.Dense(units, kernel_initializer="zeros", name="ar_skip")(lags)


def _recent(values, length: int, count: int, name: str):
    """The last `count` of `length` values of each row, shape `(count,)`."""
    import keras

    layers = keras.layers
    if count >= length:
        return values
    sequence = layers.Reshape((length, 1), name=f"{name}_sequence")(values)
    return layers.Reshape((count,), name=name)(layers.Cropping1D((length - count, 0), name=f"{name}_crop")(sequence))


def _seasonal_differences(inputs, framing: Framing):
    """`(v[j] - v[j - season_length]) / season_std` for every input point that has one, shape `(length - season,)`:
    the network's features and the skip's lags."""
    import keras

    layers = keras.layers
    length, season = framing.input_length, framing.season_length
    sequence = layers.Reshape((length, 1), name="seasonal_sequence")(inputs)
    current = layers.Cropping1D((season, 0), name="this_season")(sequence)
    previous = layers.Cropping1D((0, season), name="season_before")(sequence)
    differences = layers.Subtract(name="seasonal_difference")([current, previous])
    flat = layers.Reshape((length - season,), name="seasonal_difference_flat")(differences)
    return layers.Rescaling(1.0 / framing.season_std, name="in_season_units")(flat)


def _seasonal(inputs, differences, framing: Framing):
    """`(x, restore)` for `seasonal` scaling: the window's scaled seasonal `differences`, and a restore that adds each
    step's predicted difference to the value one season before that step (the seasonal naive forecast)."""
    import keras

    layers = keras.layers
    length, season, horizon = framing.input_length, framing.season_length, framing.horizon
    x = _recent(differences, length - season, framing.window_size, "seasonal_window")
    sequence = layers.Reshape((length, 1), name="season_ago_sequence")(inputs)
    last_season = layers.Cropping1D((length - season, 0), name="last_season")(sequence)  # (season, 1)
    repeats = -(-horizon // season)  # a horizon past one season repeats the last one, as seasonal naive does
    if repeats > 1:
        last_season = layers.Concatenate(axis=1, name="last_season_repeated")([last_season] * repeats)
    aligned = layers.Cropping1D((0, repeats * season - horizon), name="season_ago_crop")(last_season)
    season_ago = _tiled(layers.Reshape((horizon,), name="season_ago")(aligned), framing.output_blocks, "season_ago")

    def restore(y):
        difference = layers.Rescaling(framing.season_std, name="seasonal_change")(y)
        return layers.Add(name="forecast")([difference, season_ago])

    return x, restore


def _profiled(inputs, framing: Framing):
    """`(x, restore, lags)` for `profile` scaling: the window deseasonalised by the matched profile, minus its last
    value, in units of `profile_std`; a restore that adds the last value and the profile's path; the skip's lags
    the same way (spread like `last_value`'s). The matching and the profile are fixed `Dense` layers (not trained),
    their weights set from the training split's profile, so a saved model carries them in its weights file."""
    import keras
    import numpy as np

    from models.profile import profile_matrices

    layers = keras.layers
    length, horizon = framing.input_length, framing.horizon
    if len(framing.profile) != framing.season_length or framing.season_length < 2:
        raise ValueError("scaling=profile needs the training split's seasonal profile (models.profile.seasonal_profile)")
    profile = np.asarray(framing.profile, dtype=np.float64)
    matcher, bias, path, offsets = profile_matrices(profile, framing.profile_std, length, horizon)
    sequence = layers.Reshape((length, 1), name="profile_sequence")(inputs)
    current = layers.Cropping1D((1, 0), name="profile_current")(sequence)
    previous = layers.Cropping1D((0, 1), name="profile_previous")(sequence)
    changes = layers.Reshape((length - 1,), name="profile_changes")(layers.Subtract(name="profile_change")([current, previous]))
    phase = layers.Softmax(name="phase")(_fixed_dense(changes, matcher, bias, "phase_likelihood"))
    last = _last_value(inputs, length)
    seasonal_path = _tiled(_fixed_dense(phase, path, None, "profile_path"), framing.output_blocks, "profile_path")
    deseasonalised = layers.Subtract(name="minus_profile")(
        [layers.Subtract(name="minus_last_value")([inputs, last]), _fixed_dense(phase, offsets, None, "profile_offsets")]
    )
    in_units = layers.Rescaling(1.0 / framing.profile_std, name="in_profile_units")(deseasonalised)
    x = _recent(in_units, length, framing.window_size, "profile_window")
    lags = None
    if framing.ar_skip:
        spread = math.sqrt((framing.ar_skip + 1) / 2)  # as under `last_value`: a k-step change spreads like sqrt(k)
        lags = layers.Rescaling(1.0 / spread, name="ar_lags")(_recent(in_units, length, framing.ar_skip, "ar_lags_profiled"))

    def restore(y):
        change = layers.Rescaling(framing.profile_std, name="change")(y)
        return layers.Add(name="forecast")([change, seasonal_path, last])

    return x, restore, lags


def _tiled(x, blocks: int, name: str):
    """`x` (one value per horizon step) repeated for each output block, side by side."""
    import keras

    return x if blocks == 1 else keras.layers.Concatenate(name=f"{name}_per_block")([x] * blocks)


def _fixed_dense(x, kernel, bias, name: str):
    """A `Dense` with the given weights, not trained: built on `x`, then set (the weights live in the weights file,
    not in the layer's config)."""
    import keras

    layer = keras.layers.Dense(kernel.shape[1], use_bias=bias is not None, trainable=False, name=name)
    y = layer(x)
    layer.set_weights([kernel.astype("float32")] + ([bias.astype("float32")] if bias is not None else []))
    return y


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


def _window_standardised(raw, width: int, framing: Framing, lags=None):
    """Reversible instance normalisation from built-in layers.

    In units of the training std, `LayerNormalization` (no centre, no scale) gives `(v - m) / sqrt(var + eps)`;
    the window's mean `m` is a pooled average, and its std as `mean((v - m) * normalised) = var / sqrt(var + eps)`
    (a `Dot`), which `restore` multiplies back. The `ar_skip` term reads the lags minus the window's mean (in
    training-std units) and is added after that multiplication: a linear autoregression on deviations from
    the window's level.
    """
    import keras

    layers = keras.layers
    std = framing.std
    units = layers.Rescaling(1.0 / std, name="in_train_std")(raw)
    x = layers.LayerNormalization(axis=-1, center=False, scale=False, epsilon=WINDOW_EPSILON, name="window_standardize")(units)
    mean = layers.GlobalAveragePooling1D(name="window_mean")(layers.Reshape((width, 1), name="window_sequence")(units))
    centred = layers.Subtract(name="window_centred")([units, mean])
    spread = layers.Rescaling(1.0 / width, name="window_std")(layers.Dot(axes=1, name="window_var_over_std")([centred, x]))

    skip = None
    if lags is not None:
        lag_units = layers.Rescaling(1.0 / std, name="ar_lags_in_train_std")(lags)
        skip = _skip(layers.Subtract(name="ar_lags")([lag_units, mean]), framing.outputs)

    def restore(y):
        scaled = layers.Multiply(name="times_window_std")([y, spread])
        if skip is not None:
            scaled = layers.Add(name="plus_ar_skip")([scaled, skip])
        return layers.Rescaling(std, name="forecast")(layers.Add(name="plus_window_mean")([scaled, mean]))

    return x, restore
