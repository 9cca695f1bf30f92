"""Would more ensemble members help? Refit the best configurations of a finished search, each with several seeds,
and score every average of them on the test tail.

    python -m search +space=conv_lstm data=elnino hydra.run.dir=/tmp/el     # any finished default search
    python -m bench.member_count --run-dir /tmp/el --set data=elnino          # its overrides again, after --set
    python -m bench.member_count --run-dir /tmp/el --set data=elnino --configurations 10 --seeds 2
    python -m bench.member_count --tiny                                        # CI: a tiny search first, seconds

The search's tuner project is reloaded from `--run-dir` (the overrides must compose the same search); the
`--configurations` best distinct configurations are refit on every point before the test tail as the ensemble stage
does (`search.choose.selection.fit_final`, seed offsets 100, 101, ...), one after another in this process, from a
copy of the run dir into a throwaway MLflow store (both in a temporary directory, left for inspection). Printed:
each member's test MAE; the test MAE of the average of the first k configurations (one seed, what
`search.ensemble=k` registers) and of k configurations x all seeds; and the members' spread (the std of their
forecasts of one point, averaged over the test tail): the most that averaging them can take off a forecast.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.reloaded import reload_search
from bench.tiny import SMALL_DNN, TINY_SEASONAL, TINY_SPACE, search_env

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def tiny_search(space: str, overrides: list[str]) -> Path:
    """A finished tiny search in a temporary directory: its run dir."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-members-tiny-"))
    command = [sys.executable, "-m", "search", f"+space={space}", *overrides, f"hydra.run.dir={workdir / 'run'}"]
    env = search_env(f"sqlite:///{workdir / 'mlflow.db'}")
    done = subprocess.run(command, env=env, cwd=workdir, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return workdir / "run"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, help="hydra.run.dir of a finished search")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="the search's own overrides")
    parser.add_argument("--space", default="conv_lstm")
    parser.add_argument("--configurations", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=2, help="refits of each configuration, seed offsets 100, 101, ...")
    parser.add_argument("--tiny", action="store_true", help="CI: a tiny search, then 2 configurations x 2 seeds")
    args = parser.parse_args()
    if args.tiny:
        args.space, args.set, args.configurations = TINY_SPACE, [*TINY_SEASONAL, *SMALL_DNN], 2
        args.run_dir = tiny_search(args.space, args.set)
    elif args.run_dir is None:
        parser.error("--run-dir is required (or --tiny)")

    import keras
    import numpy as np

    from data.windows import window_view
    from models import forecast
    from search.choose.selection import Fits, Refitter, best_candidates, fit_final

    workdir = Path(tempfile.mkdtemp(prefix="bench-members-"))
    run_dir = shutil.copytree(args.run_dir, workdir / "run")  # reloading a tuner may write to it: the copy, not the run
    search = reload_search(args.space, args.set, run_dir, workdir / "member_count.db", "member-count")
    cfg, hypermodel, tracker, completed = search.cfg, search.hypermodel, search.tracker, search.completed
    series, layout = search.plan.series, search.plan.layout
    candidates = best_candidates(completed, args.configurations)
    fits = Fits(Refitter(hypermodel, cfg.seed), tracker)
    offsets = [100 + index for index in range(args.seeds)]
    forecasts, actual = {}, None
    for (rank, candidate), offset in itertools.product(enumerate(candidates), offsets):
        clock = time.monotonic()
        model = fit_final(fits, [(candidate, offset)], layout.test_start)
        if model is None:
            print(f"configuration {rank} ({candidate.trial_id}) seed offset {offset}: diverged, left out", flush=True)
            continue
        x, y = window_view(series, model.input_shape[1], layout.test_start, layout.length)
        forecasts[rank, offset], actual = forecast(model, x).reshape(len(y), -1), y.reshape(len(y), -1)
        mae = float(np.mean(np.abs(actual - forecasts[rank, offset])))
        print(
            f"configuration {rank} (trial {candidate.trial_id}, {candidate.epochs} epochs) seed offset {offset}: "
            f"test MAE {mae:.4f} ({time.monotonic() - clock:.0f} s)",
            flush=True,
        )
        keras.backend.clear_session()

    def mean_mae(keys) -> float:
        keys = [key for key in keys if key in forecasts]
        return float(np.mean(np.abs(actual - np.mean([forecasts[key] for key in keys], axis=0))))

    print("k  first k configurations (1 seed)  x all seeds")
    for k in range(1, len(candidates) + 1):
        one = mean_mae([(rank, offsets[0]) for rank in range(k)])
        every = mean_mae([(rank, offset) for rank in range(k) for offset in offsets])
        print(f"{k}  {one:.4f}  {every:.4f}")
    spread = np.mean(np.std([forecasts[key] for key in forecasts], axis=0))
    print(f"members' spread: {spread:.4f} (the std of their forecasts of a point, averaged over the test tail)")


if __name__ == "__main__":
    main()
