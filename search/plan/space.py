"""Search spaces: checked once at start-up, then declared to Keras Tuner in `HyperModel.build`.

A space maps hyperparameter names to specs (`conf/space/*.yaml`). The names are the builders'
keyword arguments, plus the data and training names below, and they are also the MLflow param
names: one vocabulary end to end.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from data.errors import UserError
from models.framing import SCALINGS, SEASONAL_SCALINGS, input_length
from models.names import BUILDER_ARGUMENTS, LOSSES, OPTIMIZERS

if TYPE_CHECKING:
    from keras_tuner import HyperParameters

KINDS = ("int", "float", "choice", "bool", "fixed")
DATA_NAMES = ("window_size", "split_time", "batch_size")
FRAMING_NAMES = ("scaling", "seasons", "season_halfwidth", "ar_skip")
TRAINING_NAMES = ("learning_rate", "optimizer", "loss", "momentum")
REQUIRED = ("model", "window_size", "split_time", "batch_size", "learning_rate")
DEFAULTS = {
    "optimizer": "adam",
    "loss": "huber",
    "momentum": 0.9,
    "scaling": "standard",
    "seasons": 0,
    "season_halfwidth": 0,
    "ar_skip": 0,
}
PER = {"window_size": ("horizon",), "ar_skip": ("season",)}
"""The names whose values may be declared in units of another figure (`per`), and of which."""
ALLOWED_VALUES = {"optimizer": OPTIMIZERS, "loss": LOSSES, "scaling": SCALINGS}
MAX_SEASONS = 2


def effective_kind(spec: Mapping[str, Any]) -> str:
    """The spec's kind, except that a spec with `value` set is pinned (`fixed`)."""
    return "fixed" if spec.get("value") is not None else spec.get("kind")


def validate_space(space: Mapping[str, Mapping[str, Any]]) -> dict[str, dict]:
    """Check a space and return it as plain dicts; raises `UserError` naming the bad field."""
    specs = {name: dict(spec) for name, spec in space.items()}
    for name in REQUIRED:
        if name not in specs:
            raise UserError(f"space.{name} is missing: every space declares {', '.join(REQUIRED)}")
    model = specs["model"]
    if effective_kind(model) != "fixed" or model.get("value") not in BUILDER_ARGUMENTS:
        raise UserError(f"space.model must be fixed to one of {', '.join(BUILDER_ARGUMENTS)} (got {model.get('value')!r})")
    known = set(BUILDER_ARGUMENTS[model["value"]]) | set(DATA_NAMES) | set(FRAMING_NAMES) | set(TRAINING_NAMES) | {"model"}
    for name, spec in specs.items():
        if name not in known:
            raise UserError(f"space.{name} is not a hyperparameter of model {model['value']!r}: use {', '.join(sorted(known))}")
        _check_spec(name, spec)
    for name, spec in specs.items():
        if spec.get("range") is not None:
            _check_range(name, spec)
        if spec.get("per") is not None and spec["per"] not in PER.get(name, ()):
            raise UserError(
                f"space.{name}.per={spec['per']!r} is not supported: only space.window_size.per=horizon and "
                "space.ar_skip.per=season exist"
            )
    for name in ("window_size", "batch_size"):
        if min(candidates(specs[name])) < 1:
            raise UserError(f"space.{name} must be >= 1 (got {min(candidates(specs[name]))})")
    if min(candidates(specs["learning_rate"])) <= 0:
        raise UserError("space.learning_rate must be > 0")
    for name, allowed in ALLOWED_VALUES.items():
        for value in candidates(specs[name]) if name in specs else ():
            if value not in allowed:
                raise UserError(f"space.{name}={value!r} is unknown: use one of {', '.join(allowed)}")
    for name, low, high in (("seasons", 0, MAX_SEASONS), ("season_halfwidth", 0, None), ("ar_skip", 0, None)):
        for value in candidates(specs[name]) if name in specs else ():
            if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
                allowed = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"
                raise UserError(f"space.{name}={value!r} must be {allowed}")
    return specs


def in_points(specs: Mapping[str, Mapping[str, Any]], horizon: int, season_length: int = 0) -> dict[str, dict]:
    """The space in points: a `window_size` with `per: horizon` lists multiples of `data.horizon` (as NeuralForecast's
    `input_size`), so `{kind: choice, values: [2, 4, 8], per: horizon}` at horizon 7 searches windows of 14, 28 and
    56 points; an `ar_skip` with `per: season` lists multiples of `data.season_length` (`[0, 1]`: no skip, or one
    over a whole season), 0 without a season. Trials record the points."""
    specs = {name: dict(spec) for name, spec in specs.items()}
    units = {"horizon": horizon, "season": max(season_length, 0)}
    for spec in specs.values():
        per = spec.pop("per", None)
        if per is None:
            continue
        for key in ("min", "max", "step", "value", "default"):
            if spec.get(key) is not None:
                spec[key] = spec[key] * units[per] if key != "step" or units[per] else spec[key]
        if spec.get("values"):
            spec["values"] = list(dict.fromkeys(value * units[per] for value in spec["values"]))
    return specs


def narrowed_to_season(specs: Mapping[str, Mapping[str, Any]], season_length: int) -> tuple[dict[str, dict], str | None]:
    """The space with its seasonal context checked against `data.season_length`; and a note when narrowed.

    A series without a season (`data.season_length=0`) cannot have seasonal context: a `seasons` choice
    is narrowed to 0 (a shipped space works on any data), a pinned `seasons > 0` is an error.
    """
    specs = {name: dict(spec) for name, spec in specs.items()}
    notes = []
    scalings = candidates(specs["scaling"]) if "scaling" in specs else ["standard"]
    seasonal = [value for value in scalings if value in SEASONAL_SCALINGS]
    if seasonal and season_length <= 0:
        if len(seasonal) == len(scalings):
            raise UserError(
                f"space.scaling={seasonal[0]} needs a season: set data.season_length (e.g. 12 for monthly data), "
                "or choose another space.scaling"
            )
        specs["scaling"] = {"kind": "choice", "values": [value for value in scalings if value not in SEASONAL_SCALINGS]}
        notes.append(f"space.scaling: {', '.join(seasonal)} left out: data.season_length=0")
    seasons = candidates(specs["seasons"]) if "seasons" in specs else [0]
    if max(seasons) == 0:
        return specs, "; ".join(notes) or None
    if season_length <= 0:
        if effective_kind(specs["seasons"]) == "fixed":
            raise UserError(
                f"space.seasons={seasons[0]} needs a season: set data.season_length (e.g. 52 for weekly data), "
                "or space.seasons.value=0"
            )
        specs["seasons"] = {"kind": "fixed", "value": 0}
        notes.append("space.seasons narrowed to 0: data.season_length=0 (set it to search seasonal context)")
        return specs, "; ".join(notes)
    halfwidths = candidates(specs["season_halfwidth"]) if "season_halfwidth" in specs else [0]
    if max(halfwidths) >= season_length:
        raise UserError(
            f"space.season_halfwidth={max(halfwidths)} must be less than data.season_length={season_length}: lower it"
        )
    return specs, "; ".join(notes) or None


def input_lengths(specs: Mapping[str, Mapping[str, Any]], season_length: int) -> list[int]:
    """Every raw input length a trial of the space can need (its window, or back to its oldest seasonal value, its
    skip's lags, a season more under `seasonal` scaling)."""
    grid = [
        candidates(specs[name]) if name in specs else [DEFAULTS[name]]
        for name in ("seasons", "season_halfwidth", "scaling", "ar_skip")
    ]
    return sorted(
        {
            input_length(w, n, k, season_length, scaling, lags)
            for w in candidates(specs["window_size"])
            for n, k, scaling, lags in itertools.product(*grid)
        }
    )


def _check_spec(name: str, spec: dict) -> None:
    """Check one spec's kind and range."""
    kind = effective_kind(spec)
    field = f"space.{name}"
    if kind not in KINDS:
        raise UserError(f"{field}.kind={spec.get('kind')!r} is unknown: use one of {', '.join(KINDS)}")
    if kind in ("int", "float"):
        low, high = spec.get("min"), spec.get("max")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
            raise UserError(f"{field} of kind {kind} needs numeric min and max (got min={low!r}, max={high!r})")
        if kind == "int" and not all(float(v).is_integer() for v in (low, high)):
            raise UserError(f"{field} of kind int needs integer min and max (got {low!r}, {high!r})")
        if low > high:
            raise UserError(f"{field}.min={low} is greater than {field}.max={high}: swap them")
        if spec.get("step") is not None and not spec["step"] > 0:
            raise UserError(f"{field}.step={spec['step']!r} must be > 0")
        if kind == "float" and spec.get("log") and low <= 0:
            raise UserError(f"{field}.min={low} must be > 0 with log: true")
    if kind == "choice":
        values = spec.get("values")
        if not values:
            raise UserError(f"{field}.values is empty: list at least one value for kind choice")
        if len({type(v) for v in values}) > 1 and not all(isinstance(v, (int, float)) for v in values):
            raise UserError(f"{field}.values mixes types {values!r}: use values of one type")
    if kind == "fixed" and spec.get("value") is None:
        raise UserError(f"{field} of kind fixed needs a value")


def _check_range(name: str, spec: dict) -> None:
    if name != "learning_rate" or spec["range"] != "auto":
        raise UserError(f"space.{name}.range={spec['range']!r} is not supported: only space.learning_rate.range=auto exists")
    if spec.get("value") is not None:
        raise UserError("space.learning_rate.value pins the learning rate: drop it, or drop space.learning_rate.range=auto")


def auto_learning_rate(specs: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether the search first narrows `learning_rate` with the LR range test."""
    return specs["learning_rate"].get("range") == "auto"


def with_learning_rate_range(specs: Mapping[str, Mapping[str, Any]], low: float, high: float) -> dict[str, dict]:
    """The space with `learning_rate` searched log-uniformly over `[low, high]`."""
    narrowed = {name: dict(spec) for name, spec in specs.items()}
    narrowed["learning_rate"] = {"kind": "float", "min": float(low), "max": float(high), "log": True, "range": "auto"}
    return narrowed


def reference_values(specs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One configuration of the space, for the LR range test: each entry's `default` if set, else Keras
    Tuner's default for a choice or a bool (the first value, False), else the middle of a range (the middle
    candidate of an int, the mid-point of a float, geometric with `log`). Set `space.<name>.default=` to change it.
    """
    values = dict(DEFAULTS)
    for name, spec in specs.items():
        values[name] = _middle(spec)
    return values


def _middle(spec: Mapping[str, Any]) -> Any:
    kind = effective_kind(spec)
    if kind == "fixed":
        return spec["value"]
    if spec.get("default") is not None:
        return spec["default"]
    if kind == "bool":
        return False
    if kind == "choice":
        return spec["values"][0]
    if kind == "float":
        low, high = float(spec["min"]), float(spec["max"])
        return float((low * high) ** 0.5) if spec.get("log") else (low + high) / 2
    options = candidates(spec)  # an int range
    return options[(len(options) - 1) // 2]  # the lower middle of an even count


def candidates(spec: Mapping[str, Any]) -> list:
    """Every value a spec can take for ints, choices and fixed; the two ends for floats."""
    kind = effective_kind(spec)
    if kind == "fixed":
        return [spec["value"]]
    if kind == "choice":
        return list(spec["values"])
    if kind == "bool":
        return [False, True]
    if kind == "int":
        return list(range(int(spec["min"]), int(spec["max"]) + 1, int(spec.get("step") or 1)))
    return [spec["min"], spec["max"]]


def declare(hp: HyperParameters, specs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Declare every spec on a `keras_tuner.HyperParameters` and return this trial's values by name."""
    values = dict(DEFAULTS)
    for name, spec in specs.items():
        values[name] = _declare_one(hp, name, spec)
    return values


def _declare_one(hp: HyperParameters, name: str, spec: Mapping[str, Any]) -> Any:
    kind, default = effective_kind(spec), spec.get("default")
    if kind == "fixed":
        return hp.Fixed(name, spec["value"])
    if kind == "choice":
        return hp.Choice(name, list(spec["values"]), default=default)
    if kind == "bool":
        return hp.Boolean(name, default=bool(default))
    if kind == "int":
        return hp.Int(name, int(spec["min"]), int(spec["max"]), step=int(spec.get("step") or 1), default=default)
    sampling = "log" if spec.get("log") else "linear"
    return hp.Float(name, float(spec["min"]), float(spec["max"]), step=spec.get("step"), sampling=sampling, default=default)


def tunable_names(specs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Names whose value varies between trials (for the progress line)."""
    return [name for name, spec in specs.items() if effective_kind(spec) != "fixed" and len(candidates(spec)) != 1]


def describe(spec: Mapping[str, Any]) -> str:
    """A spec in one line, as the parent run's `space.<name>` param: `int 20..60 step 10`, `float 0.0001..0.01 log`,
    `choice [32, 64, 128]`, `bool`, `fixed conv_lstm`."""
    kind = effective_kind(spec)
    if kind == "fixed":
        return f"fixed {spec['value']}"
    if kind == "choice":
        return f"choice {list(spec['values'])}"
    if kind == "bool":
        return "bool"
    if spec.get("min") is None or spec.get("max") is None:
        return f"{kind} range {spec.get('range')}"
    text = f"{kind} {spec['min']}..{spec['max']}"
    if kind == "int" and (spec.get("step") or 1) != 1:
        text += f" step {spec['step']}"
    if kind == "float" and spec.get("log"):
        text += " log"
    if spec.get("range"):
        text += f" range {spec['range']}"  # narrowed by the LR range test before the search
    return text
