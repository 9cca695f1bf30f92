"""The peer a forecaster would pick instead: NeuralForecast's NHITS on the same long CSV, scored as we score a panel.

    python -m bench.m3_panel export /tmp/m3.csv
    /path/to/other-venv/bin/python bench/nhits_peer.py /tmp/m3.csv --horizon 18 --season 12

One configuration, no search (issue 40's: `h=18`, `input_size=36`, `max_steps=1000`, `scaler_type="robust"`,
`start_padding_enabled=True`, `random_seed=1`), trained on every series but its last `--horizon` points, which it
forecasts; the test MASE of each series divides its MAE by the in-sample MAE of its seasonal naive forecast over
every point before the tail (naive where it holds no more than a season), as `data.panel_scores.panel_scales`
does for our registered model; prints one JSON line: mean and median MASE over series, the wall time of fit and
predict, the torch threads.

NeuralForecast (and torch) are a bench-only extra, never a dependency of the product: run this with another
interpreter that has them (`pip install neuralforecast` in a venv of its own), so the product's pins stay as they are.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def mase_scale(history: np.ndarray, season: int) -> float:
    """Seasonal naive's in-sample MAE (naive's where the history holds no more than a season); a flat history's
    mean absolute value: `models.panel_pyfunc.series_scale`, copied because this script runs where the project's
    dependencies are not installed (tests/test_bench.py checks that the two agree)."""
    lag = season if 0 < season < len(history) else 1
    if len(history) > lag:
        scale = float(np.mean(np.abs(history[lag:] - history[:-lag])))
        if scale > 0:
            return scale
    level = float(np.mean(np.abs(history))) if len(history) else 0.0
    return level if level > 0 else 1.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", help="a long CSV: unique_id, ds (integers), y")
    parser.add_argument("--horizon", type=int, default=18)
    parser.add_argument("--season", type=int, default=12)
    parser.add_argument("--input-size", type=int, default=36)
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import logging

    import pandas as pd
    import torch
    from neuralforecast import NeuralForecast
    from neuralforecast.models import NHITS

    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(args.threads)
    frame = pd.read_csv(args.path).sort_values(["unique_id", "ds"], kind="stable")
    tail = frame.groupby("unique_id").tail(args.horizon)
    train = frame.drop(tail.index)
    model = NHITS(
        h=args.horizon,
        input_size=args.input_size,
        max_steps=args.max_steps,
        scaler_type="robust",
        start_padding_enabled=True,
        random_seed=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
    )
    started = time.monotonic()
    forecaster = NeuralForecast(models=[model], freq=1)
    forecaster.fit(train)
    predicted = forecaster.predict()
    wall = time.monotonic() - started
    predicted = predicted.reset_index() if "unique_id" not in predicted.columns else predicted
    scored = tail.merge(predicted[["unique_id", "ds", "NHITS"]], on=["unique_id", "ds"], how="left")
    mase = []
    for uid, group in scored.groupby("unique_id"):
        history = train.loc[train["unique_id"] == uid, "y"].to_numpy(np.float64)
        mase.append(float(np.mean(np.abs(group["y"] - group["NHITS"]))) / mase_scale(history, args.season))
    mase = np.asarray(mase)
    row = {
        "model": "NHITS",
        "series": len(mase),
        "test_mase_mean": round(float(np.nanmean(mase)), 4),
        "test_mase_median": round(float(np.nanmedian(mase)), 4),
        "missing": int(np.isnan(mase).sum()),
        "wall_s": round(wall, 1),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    print(json.dumps(row))


if __name__ == "__main__":
    main()
