"""The registered model with `search.blend` (the default) beside the equal-weight average of refits, on the same search.

    python -m bench.blend_vs_average --data synthetic co2 --seeds 42 1 2 3 4
    python -m bench.blend_vs_average --data walk elnino300 co2m300 course300    # a random walk, short monthly series
    python -m bench.blend_vs_average --csv sales.csv:units:7 --seeds 42 1     # a CSV series: path:column:season
    python -m bench.blend_vs_average --data co2 --seeds 42 1 --dump /tmp/dumps     # keep each run's forecasts
    python -m bench.blend_vs_average --rescore /tmp/dumps                       # score them with today's selection
    python -m bench.blend_vs_average --rescore /tmp/dumps --add-missing         # ... with candidates added since
    python -m bench.blend_vs_average --tiny                                  # CI: seconds

Each run is the default command (`python -m search +space=conv_lstm data=<data> seed=<seed>`, any `--set`
overrides after it) in a fresh process, which registers the blend; then, in this process, its tuner project is
reloaded and the registered model of `search.blend=false` is fitted from the same trials (the `search.ensemble` best
configurations, each refit on every point before the test tail, averaged, as that mode does), and both are scored
on the test tail beside the searched best alone and the best baseline. The pairs share the search, so their
difference is the stages' alone. With every candidate's test forecasts at hand, other selection rules are scored
too, their weights chosen on the validation forecasts the search logged (`blend_forecasts.json`): `rules`.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from bench.reloaded import reload_search
from bench.tiny import TINY_SPACE, WITH_BLEND, search_env, timed_search

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

TINY = [*WITH_BLEND, "search.select.top_k=2", "search.ensemble=2"]


WALK_POINTS = 1500


def write_walk(folder: Path, seed: int = 7) -> Path:
    """`<folder>/walk.csv`: a daily price-like random walk (1,500 points, log-normal steps from 100, seeded), the kind
    of series on which naive is the forecaster to beat."""
    import numpy as np
    import pandas as pd

    steps = np.random.default_rng(seed).normal(0.0, 0.015, WALK_POINTS)
    path = folder / "walk.csv"
    pd.DataFrame({"value": np.round(100 * np.exp(np.cumsum(steps)), 3)}).to_csv(path, index=False)
    return path


def data_overrides(name: str, workdir: Path) -> list[str]:
    """`synthetic`, `co2`, `elnino`; `walk` (`write_walk`, test tail 150); a short monthly series of
    `bench.short_series` (`elnino300`, `co2m300`, `course300`: horizon 24, as there); or `path:column:season` for a CSV."""
    from bench.short_series import DATA, SERIES, write_series

    if name == "walk":
        return ["data=csv", f"data.path={write_walk(workdir)}", "data.column=value", "data.season_length=0", "data.test_size=150"]
    if name in SERIES:
        return [*DATA, f"data.path={write_series(name, workdir)}"]
    if ":" not in name:
        return [f"data={name}"]
    path, column, season = name.split(":")
    return ["data=csv", f"data.path={Path(path).resolve()}", f"data.column={column}", f"data.season_length={season}"]


def test_forecasts(space: str, overrides: list[str], run_dir: Path, workdir: Path, label: str) -> tuple:
    """Every blend candidate's forecasts on the test tail, by name, and the test targets, from the finished search of
    `run_dir`: each configuration refit on every point before the test tail (seed offset 100, as the product's
    final members and `search.blend=false`'s average), as the search trained it, the classical forecasters
    refitted there, and the averages of the networks."""
    import numpy as np

    from data.linear_forecasts import statistical_forecasters
    from data.windows import window_view
    from models import forecast
    from search.choose.selection import Fits, Refitter, best_candidates, fit_final

    search = reload_search(space, overrides, run_dir, workdir / "average.db", f"average-{label}")
    cfg, layout, tuner, series = search.cfg, search.plan.layout, search.tuner, search.plan.series
    h = layout.horizon
    _, actual = window_view(series, 1, layout.test_start, layout.length, h)
    actual = np.asarray(actual, dtype=np.float64).reshape(-1, h)

    def on_test(model) -> np.ndarray:
        x, _ = window_view(series, model.input_shape[1], layout.test_start, layout.length, h)
        return forecast(model, x).reshape(-1, h).astype(np.float64)

    fits = Fits(Refitter(search.hypermodel, cfg.seed), search.tracker)
    found = {}
    for candidate in best_candidates(search.completed, cfg.search.select.top_k)[: cfg.search.ensemble]:
        searched = tuner.load_model(tuner.oracle.get_trial(candidate.trial_id))
        found[f"trial {candidate.trial_id}"] = on_test(searched)
        found[f"trial {candidate.trial_id} refit"] = on_test(fit_final(fits, [(candidate, 100)], layout.test_start) or searched)
    refits = [v for k, v in found.items() if k.endswith(" refit")]
    searched_models = [v for k, v in found.items() if not k.endswith(" refit")]
    found[f"average of {len(refits)} refits"] = np.mean(refits, axis=0)
    found[f"average of {len(searched_models)} searched models"] = np.mean(searched_models, axis=0)
    data, ets = cfg.data, cfg.search.ets_baseline
    for f in statistical_forecasters(
        series, layout.test_start, layout.score_start, h, data.season_length, data.ma_window, data.ar_lags, ets
    ):
        x, _ = window_view(series, f.length, layout.test_start, layout.length, h)
        found[f.name] = f.forecast(x)
    return found, actual


def parent_artifact(workdir: Path, run_id: str, name: str) -> dict:
    """A JSON artifact of the search's parent run, from the bench's own tracking store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    return json.loads(Path(client.download_artifacts(run_id, name, str(workdir))).read_text())


def rules(val: dict, test: dict, test_actual) -> dict[str, float]:
    """The test MAE of each selection rule, its weights chosen on the validation forecasts `val` (blend_forecasts.json)
    and applied to the same members' test forecasts `test`."""
    import numpy as np

    from search.choose.blend import Member, choose_blend, greedy_weights

    actual = np.asarray(val["actual"], dtype=np.float64)
    names = [n for n in val["members"] if n in test]
    stacked = np.stack([np.asarray(val["members"][n], dtype=np.float64).reshape(actual.shape) for n in names])
    on_test = np.stack([np.asarray(test[n]).reshape(test_actual.shape) for n in names])

    def mae(weights) -> float:
        return float(np.mean(np.abs(test_actual - np.tensordot(weights, on_test, axes=1))))

    members = [Member(n, "x", stacked[i], float(np.mean(np.abs(actual - stacked[i])))) for i, n in enumerate(names)]
    chosen = choose_blend(members, actual, 25)
    out = {
        "cross-fitted rounds": mae(np.array([m.weight for m in members])),
        "caruana 25": mae(greedy_weights(stacked, actual, 25)),
        "best on validation": mae(greedy_weights(stacked, actual, 1)),
    }
    average = next((i for i, n in enumerate(names) if n.startswith("average of") and n.endswith("refits")), None)
    if average is not None:
        fixed = np.zeros(len(names))
        fixed[average] = 1.0
        out["average of refits"] = mae(fixed)
        if chosen.cross_fitted_forecasts is not None:  # the blend only where it beats the average by one standard error
            diff = np.abs(actual - chosen.cross_fitted_forecasts).mean(axis=1) - np.abs(actual - stacked[average]).mean(axis=1)
            means = np.array([block.mean() for block in np.array_split(diff, 10) if len(block)])
            clear = means.mean() + means.std(ddof=1) / np.sqrt(len(means)) < 0
            out["1-SE vs average"] = out["cross-fitted rounds"] if clear else out["average of refits"]
    return out


def run(name: str, seed: int, space: str, extra: list[str], workdir: Path, dump: Path | None = None) -> dict:
    overrides = [*data_overrides(name, workdir), f"seed={seed}", *extra]
    label = f"{Path(name.split(':')[0]).stem}-{seed}"
    run_dir = workdir / label
    command = [f"+space={space}", *overrides, f"hydra.run.dir={run_dir}"]
    summary, wall, _ = timed_search(command, run_dir, search_env(f"sqlite:///{workdir / 'mlflow.db'}"), workdir)
    test, actual = test_forecasts(space, overrides, run_dir, workdir, label)
    evidence = parent_artifact(workdir, summary["mlflow_parent_run_id"], "blend_forecasts.json")
    if dump is not None:  # the evidence and every candidate's test forecasts, to score other rules offline (`rules`)
        dump.mkdir(parents=True, exist_ok=True)
        tested = {"actual": actual.tolist(), "members": {k: v.tolist() for k, v in test.items()}}
        (dump / f"{label}.json").write_text(json.dumps({"val": evidence, "test": tested, "summary": summary}))
    best = summary["best_baseline"]["test"]
    average = next(v for k, v in test.items() if k.endswith(" refits"))
    return {
        "data": Path(name.split(":")[0]).stem,
        "seed": seed,
        "blend_test_mae": summary["test_mae"],
        "average_test_mae": float(abs(actual - average).mean()),
        "searched_test_mae": summary["test_mae_without_refit"],
        "best_baseline": best["name"],
        "best_baseline_test_mae": best["mae"],
        "blend_val_mae_cross_fitted": summary["blend"]["val_mae_cross_fitted"],
        "ensemble_weights": summary["ensemble_weights"],
        "rules": rules(evidence, test, actual),
        "wall_s": round(wall, 1),
        "search_s": summary["stage_seconds"].get("search"),
        "blend_s": summary["stage_seconds"].get("blend"),
    }


def offered(names: list[str], winner: str) -> list[str]:
    """The candidates today's product offers among a dump's (which may hold every configuration as searched): the
    refits, their average, the winner as searched, the classical forecasters."""
    searched_others = [n for n in names if n.startswith("trial ") and not n.endswith(" refit") and n != f"trial {winner}"]
    return [n for n in names if n not in searched_others and not n.endswith(" searched models")]


STATISTICAL = {"naive", "seasonal_naive", "moving_average", "drift", "ar_changes", "ets", "theta"}


def shrunk(weights, members: list, shrink: float):
    """`weights` times (1 - `shrink`), plus `shrink` on the statistical member with the lowest validation MAE."""
    import numpy as np

    if not shrink:
        return weights
    statistical = [i for i, m in enumerate(members) if m.name in STATISTICAL]
    best = min(statistical, key=lambda i: float(np.mean(np.abs(members[i].val_forecasts - members[i].actual))))
    out = (1 - shrink) * np.asarray(weights, dtype=np.float64)
    out[best] += shrink
    return out


def with_missing_classical(dump: dict) -> dict:
    """`dump` with the classical candidates today's checkout offers and the dump lacks (e.g. `theta`, added after it
    was written), computed as the product (validation: fitted before the validation points) and `test_forecasts`
    (test: fitted before the test tail) compute them, each reading at most the validation start's history. Only for
    a named data set (`data=<name>`), whose series the config gives back; a CSV's dump is returned as it is."""
    import re

    import numpy as np
    from hydra import compose, initialize_config_dir

    from data.linear_forecasts import statistical_forecasters
    from data.sources import load_series
    from data.windows import window_view
    from search.config import register_configs

    summary, conf = dump["summary"], Path(__file__).resolve().parents[1] / "conf"
    if summary["data"] in ("csv", "panel") or not (conf / "data" / f"{summary['data']}.yaml").is_file():
        return dump  # a file's series: the dump does not say which
    register_configs()
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["+space=conv_lstm", f"data={summary['data']}"])
    (score_start, test_start), (_, stop) = (map(int, pair) for pair in re.findall(r"\[(\d+), (\d+)\)", summary["scored_on"]))
    series, data, h = load_series(cfg.data), cfg.data, int(summary.get("horizon") or 1)
    for split, fit_stop, end in (("val", score_start, test_start), ("test", test_start, stop)):
        found = statistical_forecasters(series, fit_stop, score_start, h, data.season_length, data.ma_window, data.ar_lags)
        for forecaster in found:
            if forecaster.name not in dump[split]["members"]:
                x, y = window_view(series, forecaster.length, fit_stop, end, h)
                assert np.allclose(np.asarray(y).ravel(), np.asarray(dump[split]["actual"]).ravel(), atol=1e-3)
                dump[split]["members"][forecaster.name] = forecaster.forecast(x).tolist()
    return dump


def rescore(dump_dir: Path, shrinks: tuple[float, ...] = (), add_missing: bool = False) -> None:
    """Each dump of `--dump` scored with today's selection (`search.choose.blend.choose_blend` on the candidates it
    offers), once for each `search.blend_evidence` its forecasts allow (`earlier` and `both` need a search run with
    `search.blend_evidence=earlier` or `both`): the blend's test MAE beside the equal-weight average of refits, the
    searched best alone and the best baseline, per run and per series (means, paired differences, how often at or
    below the best baseline)."""
    for evidence in ("validation", "earlier", "both"):
        paths = sorted(dump_dir.glob("*.json"))
        if evidence != "validation" and not any("earlier" in json.loads(p.read_text())["val"] for p in paths):
            return
        print(f"-- weights chosen on: {evidence}")
        rescore_with(paths, evidence, add_missing=add_missing)
        for shrink in shrinks if evidence == "validation" else ():
            print(f"-- weights chosen on: validation, shrunk by {shrink} toward the best classical forecaster")
            rescore_with(paths, evidence, shrink, add_missing)


def rescore_with(paths: list[Path], evidence: str, shrink: float = 0.0, add_missing: bool = False) -> None:
    import numpy as np

    from search.choose.blend import Member, choose_blend

    by_series: dict[str, list[dict]] = {}
    for path in paths:
        dump = json.loads(path.read_text())
        dump = with_missing_classical(dump) if add_missing else dump
        summary, val, test = dump["summary"], dump["val"], dump["test"]
        actual, test_actual = np.asarray(val["actual"]), np.asarray(test["actual"])
        names = [n for n in offered(list(val["members"]), summary["best_trial_id"]) if n in test["members"]]
        earlier = val.get("earlier", {"members": {}})
        early_actual = np.asarray(earlier["actual"]) if "actual" in earlier else None
        early_members = earlier["members"]
        members = [
            Member(
                n,
                "statistical" if not n.startswith(("trial", "average")) else "refit",
                np.asarray(val["members"][n]).reshape(actual.shape),
                0.0,
                earlier_forecasts=np.asarray(early_members[n]).reshape(early_actual.shape) if n in early_members else None,
            )
            for n in names
        ]
        choose_blend(members, actual, 25, evidence, early_actual)
        for member in members:
            member.actual = actual
        weights = shrunk([m.weight for m in members], members, shrink)
        for member, weight in zip(members, weights, strict=True):
            member.weight = float(weight)
        blend = sum(m.weight * np.asarray(test["members"][m.name]).reshape(test_actual.shape) for m in members)
        average = next(n for n in test["members"] if n.startswith("average of") and n.endswith("refits"))
        row = {
            "run": path.stem,
            "blend": float(np.mean(np.abs(test_actual - blend))),
            "average": float(np.mean(np.abs(test_actual - np.asarray(test["members"][average]).reshape(test_actual.shape)))),
            "searched": summary["test_mae_without_refit"],
            "best_baseline": summary["best_baseline"]["test"]["mae"],
            "baseline": summary["best_baseline"]["test"]["name"],
            "weights": {m.name: round(m.weight, 2) for m in members if m.weight >= 0.005},
        }
        by_series.setdefault(path.stem.rsplit("-", 1)[0], []).append(row)
        print(
            f"{row['run']}  blend {row['blend']:.4f}  average {row['average']:.4f}  searched {row['searched']:.4f}  "
            f"{row['baseline']} {row['best_baseline']:.4f}  {row['weights']}"
        )
    print("series  runs  blend mean  average mean  paired blend-average (se)  searched mean  best baseline  blend <= it")
    for series, rows in by_series.items():
        blend, average = np.array([r["blend"] for r in rows]), np.array([r["average"] for r in rows])
        diff = blend - average
        se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
        wins = sum(r["blend"] <= r["best_baseline"] for r in rows)
        print(
            f"{series}  {len(rows)}  {blend.mean():.4f}  {average.mean():.4f}  {diff.mean():+.4f} ({se:.4f})  "
            f"{np.mean([r['searched'] for r in rows]):.4f}  {rows[0]['baseline']} {rows[0]['best_baseline']:.4f}  "
            f"{wins} of {len(rows)}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="*", default=["synthetic", "co2"])
    parser.add_argument("--csv", nargs="*", default=[], help="CSV series as path:column:season_length")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--set", nargs="*", default=[], help="overrides added to every command")
    parser.add_argument("--out", type=Path, help="append the rows to this JSON-lines file")
    parser.add_argument("--tiny", action="store_true", help="a tiny dense search (CI: every code path)")
    parser.add_argument("--dump", type=Path, help="write each run's validation and test forecasts here (JSON)")
    parser.add_argument("--rescore", type=Path, help="score the dumps in this folder with today's selection; no search")
    parser.add_argument("--shrink", type=float, nargs="*", default=[], help="--rescore: also with these shrinkages (λ)")
    parser.add_argument(
        "--add-missing", action="store_true", help="--rescore: add the classical candidates a dump lacks (named data sets)"
    )
    args = parser.parse_args(argv)
    if args.rescore:
        rescore(args.rescore, tuple(args.shrink), args.add_missing)
        return
    space = TINY_SPACE if args.tiny else "conv_lstm"
    extra = [*TINY, *args.set] if args.tiny else list(args.set)
    names = (["synthetic"] if args.tiny else args.data) + args.csv
    print("data  seed  blend  average  searched  best_baseline  wall_s  weights", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-blend-") as tmp:
        for name in names:
            for seed in args.seeds:
                row = run(name, seed, space, extra, Path(tmp), args.dump)
                weights = " ".join(f"{k}={v:.2f}" for k, v in row["ensemble_weights"].items())
                print(
                    f"{row['data']}  {seed}  {row['blend_test_mae']:.4f}  {row['average_test_mae']:.4f}  "
                    f"{row['searched_test_mae']:.4f}  {row['best_baseline']} {row['best_baseline_test_mae']:.4f}  "
                    f"{row['wall_s']:.0f}  {weights}",
                    flush=True,
                )
                print("    rules: " + "  ".join(f"{k} {v:.4f}" for k, v in row["rules"].items()), flush=True)
                if args.out:
                    with args.out.open("a") as out:
                        out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
