"""Which stages after the search pay: the same finished search, evaluated with each selection variant.

    python -m bench.selection_variants --data synthetic co2     # the default conv_lstm search on each
    python -m bench.selection_variants --tiny                   # CI

For each series, one real search (`python -m search +space=conv_lstm data=<data>`, stages off) runs in
a fresh process; then, in this process, its tuner project is reloaded and the variants below are
fitted from its trials (one seed each; the backtest once, shared by the variants that use it) and
scored on the test tail, beside naive and the best baseline:

- `search best`: the trial with the lowest val_mae, as the search trained it (no stage at all);
- `search best + refit`: retrained on every pre-test point for its best epoch count;
- `backtest + refit`: the winner of the rolling-origin backtest (top_k 5, folds 3), refit;
- `backtest + refit + seeds k`: the mean of k refits of that winner (k = 3, 5);
- `backtest + refit + configurations 3`: the mean of the 3 best configurations of the backtest, refit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.reloaded import reload_search
from bench.tiny import TINY_SEASONAL, TINY_SPACE, search_env

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

TINY = TINY_SEASONAL
STAGES_OFF = ["search.select.top_k=1", "search.refit=false"]


def search(data: str, space: str, overrides: list[str], workdir: Path) -> Path:
    run_dir = workdir / data
    command = [
        sys.executable,
        "-m",
        "search",
        f"+space={space}",
        f"data={data}",
        *overrides,
        *STAGES_OFF,
        f"hydra.run.dir={run_dir}",
    ]
    env = search_env(f"sqlite:///{workdir / 'mlflow.db'}")
    done = subprocess.run(command, env=env, cwd=workdir, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return run_dir


def variants(
    data: str, space: str, overrides: list[str], run_dir: Path, workdir: Path, top_k: int, folds: int, sizes=(3, 5)
) -> list[dict]:
    import keras
    import numpy as np

    from data.windows import window_view
    from models import forecast
    from search.choose.selection import Fits, Refitter, backtest, best_candidates, ensemble_members, fit_final, fold_blocks
    from search.scoring.evaluation import baseline_table

    search = reload_search(space, [f"data={data}", *overrides], run_dir, workdir / "variants.db", f"variants-{data}")
    cfg, hypermodel, tracker, tuner, completed = search.cfg, search.hypermodel, search.tracker, search.tuner, search.completed
    series, layout = search.plan.series, search.plan.layout
    fits = Fits(Refitter(hypermodel, cfg.seed), tracker)

    def test_mae(model) -> float:
        x, y = window_view(series, model.input_shape[1], layout.test_start, layout.length)
        return float(np.mean(np.abs(y - forecast(model, x))))

    rows = []

    def row(name: str, model, seconds: float) -> None:
        rows.append({"data": data, "variant": name, "test_mae": test_mae(model), "seconds": seconds})
        print(f"{data}: {name}: test_mae {rows[-1]['test_mae']:.4f} ({seconds:.0f} s)", flush=True)

    candidates = best_candidates(completed, top_k)
    best = candidates[0]
    row("search best", tuner.load_model(tuner.oracle.get_trial(best.trial_id)), 0.0)
    clock = time.monotonic()
    searched = tuner.load_model(tuner.oracle.get_trial(best.trial_id))
    # fit_final returns None when every member diverged: the product then keeps the searched model, so does this.
    row(
        "search best + refit",
        fit_final(fits, [(best, 100)], layout.test_start) or searched,
        time.monotonic() - clock,
    )
    clock = time.monotonic()
    winner = backtest(fits, candidates, fold_blocks(layout.score_start, layout.test_start, folds))
    backtest_seconds = time.monotonic() - clock
    ranked = sorted(candidates, key=lambda c: c.backtest_mae if c.backtest_mae is not None else float("inf"))
    ensembles = [(f"+ seeds {k}", k, "seeds") for k in sizes] + [(f"+ configurations {sizes[0]}", sizes[0], "configurations")]
    for name, size, of in [("backtest + refit", 1, "seeds"), *ensembles]:
        clock = time.monotonic()
        members = ensemble_members(winner, ranked, size, of)
        model = fit_final(fits, members, layout.test_start) or tuner.load_model(tuner.oracle.get_trial(winner.trial_id))
        row(
            name if name.startswith("backtest") else f"backtest + refit {name}",
            model,
            backtest_seconds + time.monotonic() - clock,
        )
        keras.backend.clear_session()
    table = baseline_table(series, layout, cfg.data.season_length, cfg.data.ma_window, True, cfg.data.ar_lags).maes
    best_baseline = min(table.items(), key=lambda item: item[1]["test_mae"])
    for entry in rows:
        entry.update(naive=table["naive"]["test_mae"], best_baseline=f"{best_baseline[0]} {best_baseline[1]['test_mae']:.4f}")
    search_seconds = json.loads((run_dir / "summary.json").read_text())["stage_seconds"]["search"]
    for entry in rows:
        entry["share_of_search"] = entry["seconds"] / search_seconds
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["synthetic", "co2"])
    parser.add_argument("--tiny", action="store_true", help="a seconds-long run for CI")
    args = parser.parse_args()
    data, overrides, top_k, folds, sizes = (["synthetic"], TINY, 2, 2, (2,)) if args.tiny else (args.data, [], 5, 3, (3, 5))
    space = TINY_SPACE if args.tiny else "conv_lstm"
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-variants-") as tmp:
        for name in data:
            run_dir = search(name, space, overrides, Path(tmp))
            rows += variants(name, space, overrides, run_dir, Path(tmp), top_k, folds, sizes)
    print("data  variant  test_mae  naive  best_baseline  seconds  share_of_search")
    for r in rows:
        print(
            f"{r['data']}  {r['variant']}  {r['test_mae']:.4f}  {r['naive']:.4f}  {r['best_baseline']}  "
            f"{r['seconds']:.0f}  {r['share_of_search']:.2f}"
        )


if __name__ == "__main__":
    main()
