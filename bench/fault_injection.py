"""Kill a search with SIGKILL at random instants, resume it each time, and count what was lost.

    python -m bench.fault_injection --runs 5          # 5 searches, each killed once at a random instant
    python -m bench.fault_injection --tiny            # CI-sized: 1 run

Each run starts a small real search (`python -m search +space=dnn ...`), kills it with `kill -9` after
a random delay (no handler runs: the state on disk and in MLflow is whatever the instant left), then
runs the same command with `search.resume=true` until it exits 0 (a resume may be killed too, with
`--kills` > 1). It then compares Keras Tuner's oracle with the MLflow store and reports, per run and
in total: kills, trials lost (completed in the oracle, no FINISHED run), duplicated (more than one
FINISHED run for a trial), runs of the experiment left RUNNING. All must be zero.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.tiny import SMALL_DNN, search_env

SEARCH = ["+space=dnn", "data.length=500", "data.test_size=60", "data.season_length=0", "tuner.max_epochs=4"]
SEARCH += ["tuner.factor=2", "search.select.top_k=2", "search.select.folds=2", "search.ensemble=2"]
SEARCH += ["search.select.backtest=always", *SMALL_DNN]  # every stage after the search, the backtest too


def one_run(workdir: Path, rng: random.Random, kills: int, max_delay: float, extra: list[str]) -> dict:
    """One search killed `kills` times at random instants, then resumed to the end; what the store shows."""
    run_dir, uri = workdir / "run", f"sqlite:///{workdir / 'mlflow.db'}"
    command = [sys.executable, "-m", "search", *SEARCH, *extra, f"hydra.run.dir={run_dir}"]
    done, killed = False, 0
    log = open(workdir / "stderr.log", "a")  # noqa: SIM115 - every attempt's stderr, for a run that never finishes
    for _attempt in range(kills + 20):
        resume = ["search.resume=true"] if (run_dir / "mlflow_run.json").exists() else []
        process = subprocess.Popen([*command, *resume], env=search_env(uri), cwd=workdir, stdout=subprocess.DEVNULL, stderr=log)
        if killed < kills:
            try:
                process.wait(timeout=rng.uniform(2.0, max_delay))
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
                killed += 1
                continue
        if process.wait() == 0:
            done = True
            break
    log.close()
    if not done:
        print((workdir / "stderr.log").read_text()[-3000:], file=sys.stderr)
    return {"killed": killed, "finished": done, **audit(run_dir, uri)}


def audit(run_dir: Path, uri: str) -> dict:
    """Compare the oracle's completed trials with the search's FINISHED child runs."""
    from mlflow.tracking import MlflowClient

    parent_id = json.loads((run_dir / "mlflow_run.json").read_text())["run_id"]
    completed = set()
    for trial_file in (run_dir / "tuner").glob("trial_*/trial.json"):
        trial = json.loads(trial_file.read_text())
        if trial.get("status") == "COMPLETED":
            completed.add(trial["trial_id"])
    client = MlflowClient(uri)
    experiment = client.get_run(parent_id).info.experiment_id
    children = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent_id}'", max_results=5000)
    trial_runs = [c for c in children if "trial_id" in c.data.tags]
    finished = [c.data.tags["trial_id"] for c in trial_runs if c.info.status == "FINISHED"]
    return {
        "trials": len(completed),
        "lost": len(completed - set(finished)),
        "duplicated": len(finished) - len(set(finished)),
        # every run of the experiment: a parent created an instant before the kill, its id never saved, counts too
        "running": len(client.search_runs([experiment], "attributes.status = 'RUNNING'", max_results=5000)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--kills", type=int, default=1, help="kills per run (a resume can be killed too)")
    parser.add_argument("--max-delay", type=float, default=40.0, help="seconds: each kill comes after U(2, this)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args()
    runs, max_delay = (1, 15.0) if args.tiny else (args.runs, args.max_delay)
    # CI: one process (a worker and a fit process beside each attempt would only add their imports to a tiny run)
    extra = ["search.workers=1"] if args.tiny else []
    rng = random.Random(args.seed)
    totals = {"killed": 0, "lost": 0, "duplicated": 0, "running": 0, "unfinished": 0}
    started = time.monotonic()
    for index in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
            row = one_run(Path(tmp), rng, args.kills, max_delay, extra)
        print(f"run {index}: " + " ".join(f"{k}={v}" for k, v in row.items()), flush=True)
        for key in ("killed", "lost", "duplicated", "running"):
            totals[key] += row[key]
        totals["unfinished"] += not row["finished"]
    print(f"runs={runs} " + " ".join(f"{k}={v}" for k, v in totals.items()) + f" ({time.monotonic() - started:.0f} s)")
    bad = totals["lost"] + totals["duplicated"] + totals["running"] + totals["unfinished"]
    print("all zero" if bad == 0 else "FAULTS FOUND")


if __name__ == "__main__":
    main()
