"""Where `scaling=profile` starts: the forecast of a model whose network outputs 0, on each shipped series' test tail.

    python -m bench.profile_start                   # elnino, co2, synthetic
    python -m bench.profile_start --tiny            # CI: elnino only

No training. The seasonal profile (`models.profile.seasonal_profile`) comes from every point before the test tail,
as the registered members are refit on them. Printed per series: the profile's smoothing half-width (phases;
`models.profile.smoothing_halfwidth`); naive; naive plus the profile with the phase known (the calendar); the same
with the phase matched from each window's own changes, as the model does (`models.profile.profile_forecast`), for
windows of several lengths (a model reads a whole season at least); the mean of the last `data.ma_window`
deseasonalised values plus the profile's path, the phase matched over a season (a moving average that follows the
season: what the model's linear skip can learn); and the `ets` and `ar_changes` baselines beside them
(`data.baselines`, the data config's own settings).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

WINDOWS = {"elnino": (13, 25, 37, 61), "co2": (21, 53, 61, 105), "synthetic": (21, 61, 366)}


def load(name: str):
    """`(series, data config)` of a shipped data config, composed by Hydra as a search would."""
    from hydra import compose, initialize_config_dir

    from search.config import register_configs
    from search.plan.planning import load_series

    register_configs()
    with initialize_config_dir(config_dir=str(Path(__file__).resolve().parent.parent / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"data={name}"])
    return np.asarray(load_series(cfg.data), dtype=np.float64), cfg.data


def row(name: str) -> str:
    from data.baselines import ar_changes, exponential_smoothing
    from models.profile import profile_forecast, profile_path, seasonal_profile, smoothing_halfwidth

    series, data = load(name)
    season, test_start = data.season_length, len(series) - data.test_size
    test = np.arange(test_start, len(series))
    profile, spread = seasonal_profile(series[:test_start], season)

    def mae(forecast) -> str:
        return f"{np.mean(np.abs(np.ravel(forecast) - series[test])):.4f}"

    def windows(width: int) -> np.ndarray:
        return np.stack([series[t - width : t] for t in test])

    matched = [f"{w}: {mae(profile_forecast(windows(w), profile, spread))}" for w in WINDOWS[name]]
    known = series[test - 1] + profile_path(profile, test, 1).ravel()
    over_a_season = windows(max(season + 1, data.ma_window))
    averaged = mae(profile_forecast(over_a_season, profile, spread, level_width=data.ma_window))
    smoothing = exponential_smoothing(series, test_start, season)
    autoregression = ar_changes(series, test_start, data.ar_lags) if data.ar_lags else None
    ets = mae(smoothing[test]) if smoothing is not None else "-"
    ar = mae(autoregression[test]) if autoregression is not None else "-"
    halfwidth = smoothing_halfwidth(series[:test_start], season)
    return (
        f"| {name} ({season}) | {halfwidth} | {mae(series[test - 1])} | {mae(known)} | {' / '.join(matched)} | {averaged} "
        f"| {ets} | {ar} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="CI: elnino only")
    args = parser.parse_args()
    print(
        "| series (season) | smoothing | naive | naive + profile, phase known | phase matched, window: MAE "
        "| deseasonalised moving average | ets | ar_changes |"
    )
    print("|---|---:|---:|---:|---|---:|---:|---:|")
    for name in ["elnino"] if args.tiny else ["elnino", "co2", "synthetic"]:
        print(row(name), flush=True)


if __name__ == "__main__":
    main()
