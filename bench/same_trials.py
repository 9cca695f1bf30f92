"""Whether two searches trained the same trials: `python -m bench.same_trials <run dir A> <run dir B>`.

Compares every trial of the two Keras Tuner projects (hyperparameters, status, score and every
epoch's val_mae, exactly) and the summaries' headline figures. Used for issue 17's bar that
`data.horizon=1` reproduces the search of the code before horizons existed: run the default command
from both checkouts with their own `hydra.run.dir`, then compare. Exit 1 when anything differs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HEADLINE = ("best_trial_id", "best_val_mae", "search_best_val_mae", "winner_val_mae", "test_mae", "baselines", "verdict")


def trials(run_dir: Path) -> dict[str, tuple]:
    """`{trial_id: (hyperparameters, status, score, [val_mae of each epoch])}` of a run dir's tuner project."""
    found = {}
    for path in (run_dir / "tuner").rglob("trial.json"):
        trial = json.loads(path.read_text())
        epochs = trial["metrics"]["metrics"].get("val_mae", {}).get("observations", [])
        found[trial["trial_id"]] = (
            trial["hyperparameters"]["values"],
            trial["status"],
            trial["score"],
            [o["value"] for o in epochs],
        )
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.splitlines()[0])
        return 2
    a, b = (Path(p) for p in argv)
    ours, theirs = trials(a), trials(b)
    differing = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
    same = len(set(ours) & set(theirs)) - len([k for k in differing if k in ours and k in theirs])
    print(f"trials: {len(ours)} and {len(theirs)}; identical (hyperparameters, status, score, every epoch's val_mae): {same}")
    missing = (None, None, "missing", [])
    for trial_id in differing:
        print(f"  differs: trial {trial_id}: score {ours.get(trial_id, missing)[2]} vs {theirs.get(trial_id, missing)[2]}")
    summaries = [json.loads((p / "summary.json").read_text()) for p in (a, b)]
    for key in HEADLINE:
        left, right = (s.get(key) for s in summaries)
        shown = "(same)" if key in ("baselines", "verdict") else f"{left} | {right}"
        print(f"{key:20} {'same' if left == right else 'DIFFERENT'}  {shown if left == right else f'{left} | {right}'}")
    identical = not differing and all(summaries[0].get(k) == summaries[1].get(k) for k in HEADLINE)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
