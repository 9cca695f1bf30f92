"""The GPU check: the default search on the GPU, four searches sharing it (a Hydra multirun over seeds), and
`search.workers=4` on it, each beside the same command on the machine's CPU cores.

    bash bench/gpu_check.sh                  # on the GPU machine: installs the wheels if needed, then this
    python -m bench.gpu_check --budget-s 480 # where the project is installed (a workstation with TensorFlow too)
    python -m bench.gpu_check --tiny         # every code path in seconds, on CPU (CI)

Every stage is the real command (`python -m search +space=conv_lstm backend=<b> ...`) in a fresh process group, against
its own sqlite store, cut at its share of `--budget-s` (SIGTERM: the search ends its runs KILLED, as after Ctrl-C), so
the whole check ends in time on any machine. Trials per hour count the `trial ...` progress lines a stage printed over
its wall time (interpreter start and the evaluation after the search included: a lower bound for the search alone).
GPU utilisation and memory are sampled from `nvidia-smi` every 0.5 s while a stage runs. Results go to
`<out>/gpu_check.json` and `<out>/gpu_check.md` (the table bench/README §11 quotes), the stages' logs to `<out>/logs.txt`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.tiny import TINY_SEASONAL, TINY_SPACE

ROOT = Path(__file__).resolve().parent.parent
TRIAL_LINE = re.compile(r"^trial \S+ ")


@dataclass
class Stage:
    """One command of the check: where it runs, what it adds to the default command, its share of the budget."""

    name: str
    device: str  # gpu | cpu
    overrides: list[str]
    share: float
    multirun: bool = False


@dataclass
class Result:
    name: str
    device: str
    command: str
    wall_s: float
    finished: bool
    exit_code: int | None
    trials: int
    trials_per_hour: float
    gpu_util_mean: float | None = None
    gpu_util_max: float | None = None
    gpu_memory_max_mib: float | None = None
    test_mae: list[float] = field(default_factory=list)
    note: str = ""


def stages(gpu: bool) -> list[Stage]:
    """The default search, 4 seeds side by side, 4 workers: on the GPU if there is one, each beside the CPU's."""
    multirun = ["seed=1,2,3,4", "hydra/launcher=joblib", "hydra.launcher.n_jobs=4"]
    plan = [
        Stage("default search", "gpu", [], 0.28),
        Stage("default search", "cpu", [], 0.16),
        Stage("4-job multirun (seeds)", "gpu", multirun, 0.2, multirun=True),
        Stage("4-job multirun (seeds)", "cpu", multirun, 0.12, multirun=True),
        Stage("search.workers=4", "gpu", ["search.workers=4"], 0.14),
        Stage("search.workers=4", "cpu", ["search.workers=4"], 0.1),
    ]
    return plan if gpu else [s for s in plan if s.device == "cpu"]


def gpu_present() -> bool:
    try:
        return "GPU " in subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return False


def default_backend() -> str:
    """JAX where TensorFlow is missing (the lent GPU machine), else what `backend=auto` picks for this device."""
    sys.path.insert(0, str(ROOT))
    from search.fit.backends import auto

    return auto()


class GpuSampler:
    """`nvidia-smi` polled every 0.5 s into a file while a stage runs."""

    def __init__(self, path: Path, enabled: bool):
        self.path, self.process = path, None
        if enabled:
            query = ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits", "-lms", "500"]
            self.process = subprocess.Popen(query, stdout=path.open("w"), stderr=subprocess.DEVNULL)

    def stop(self) -> tuple[float | None, float | None, float | None]:
        """Mean and max utilisation (%), max memory used (MiB)."""
        if self.process is None:
            return None, None, None
        self.process.terminate()
        self.process.wait(10)
        rows = []
        for line in self.path.read_text().splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) >= 2 and all(p.replace(".", "").isdigit() for p in parts[:2]):
                rows.append((float(parts[0]), float(parts[1])))
        if not rows:
            return None, None, None
        util = [r[0] for r in rows]
        return round(sum(util) / len(util), 1), max(util), max(r[1] for r in rows)


def run_stage(stage: Stage, backend: str, budget_s: float, workdir: Path, extra: list[str], space: str = "conv_lstm") -> Result:
    workdir.mkdir(parents=True)
    command = [sys.executable, "-m", "search"] + (["-m"] if stage.multirun else [])
    command += [f"+space={space}", f"backend={backend}", *stage.overrides, *extra]
    command += ["hydra.sweep.dir=sweep"] if stage.multirun else ["hydra.run.dir=run"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env["PYTHONUNBUFFERED"] = "1"
    if stage.device == "cpu":
        env.update(CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu")
    env.pop("MLFLOW_TRACKING_URI", None)  # each stage its own store: sqlite:///<workdir>/mlflow.db
    log = workdir / "log.txt"
    sampler = GpuSampler(workdir / "gpu.csv", stage.device == "gpu")
    started = time.monotonic()
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = process.wait(timeout=budget_s)
            finished = True
        except subprocess.TimeoutExpired:
            finished = False
            os.killpg(process.pid, signal.SIGTERM)  # the search closes its runs KILLED
            try:
                code = process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                code = process.wait()
    wall = time.monotonic() - started
    util_mean, util_max, memory = sampler.stop()
    text = log.read_text(errors="replace")
    trials = sum(1 for line in text.splitlines() if TRIAL_LINE.match(line))
    summaries = sorted(workdir.glob("sweep/*/summary.json")) if stage.multirun else [workdir / "run" / "summary.json"]
    test_mae = []
    for path in summaries:
        if not path.is_file():
            continue
        try:
            value = json.loads(path.read_text()).get("test_mae")
        except ValueError:
            continue
        if value is not None:
            test_mae.append(round(float(value), 4))
    return Result(
        name=stage.name,
        device=stage.device,
        command=" ".join(command[1:]),
        wall_s=round(wall, 1),
        finished=finished and code == 0,
        exit_code=code,
        trials=trials,
        trials_per_hour=round(trials * 3600 / wall, 0) if wall > 0 else 0.0,
        gpu_util_mean=util_mean,
        gpu_util_max=util_max,
        gpu_memory_max_mib=memory,
        test_mae=test_mae,
        note="" if finished else f"cut at {budget_s:.0f} s",
    )


def table(results: list[Result], backend: str, machine: str) -> str:
    lines = [
        f"Backend {backend}; {machine}.",
        "",
        "| stage | device | wall s | ended | trials | trials/hour | GPU util mean / max % | GPU memory max MiB | test MAE |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        util = "-" if r.gpu_util_mean is None else f"{r.gpu_util_mean:.0f} / {r.gpu_util_max:.0f}"
        memory = "-" if r.gpu_memory_max_mib is None else f"{r.gpu_memory_max_mib:.0f}"
        ended = "yes" if r.finished else (r.note or f"exit {r.exit_code}")
        mae = ", ".join(f"{v:.3f}" for v in r.test_mae) or "-"
        lines.append(
            f"| {r.name} | {r.device.upper()} | {r.wall_s:.0f} | {ended} | {r.trials} | {r.trials_per_hour:.0f} | {util} | "
            f"{memory} | {mae} |"
        )
    return "\n".join(lines)


def machine_description() -> str:
    cores = os.cpu_count()
    gpu = ""
    try:
        gpu = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    versions = []
    for package in ("keras", "jax", "torch", "tensorflow"):
        try:
            from importlib.metadata import version

            versions.append(f"{package} {version(package)}")
        except Exception:  # noqa: BLE001 - not installed
            continue
    return f"{gpu or 'no GPU'}, {cores} CPU cores, Python {platform.python_version()}, {', '.join(versions)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-s", type=float, default=480, help="wall time for all stages together")
    parser.add_argument("--backend", default=None, help="tensorflow | jax | torch (default: what backend=auto picks)")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "."), help="where the results go")
    parser.add_argument("--set", nargs="*", default=[], help="overrides added to every command")
    parser.add_argument("--only", nargs="*", default=None, help="stage numbers to run (1-based), e.g. --only 1 2")
    parser.add_argument("--space", default="conv_lstm", help="the search space (a file in conf/space/)")
    parser.add_argument("--tiny", action="store_true", help="a tiny dense space on 600 points (CI)")
    args = parser.parse_args()
    space = TINY_SPACE if args.tiny else args.space

    gpu = gpu_present()
    backend = args.backend or default_backend()
    extra = list(args.set)
    if args.tiny:
        extra += [*TINY_SEASONAL, "search.select.top_k=1", "search.ensemble=1", "search.refit=false"]
    plan = stages(gpu)
    if args.only:
        plan = [plan[int(i) - 1] for i in args.only]
    total = sum(s.share for s in plan)
    machine = machine_description()
    print(f"gpu_check: {machine}; backend {backend}; {len(plan)} stages in {args.budget_s:.0f} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        logs = []
        for index, stage in enumerate(plan, start=1):
            budget = args.budget_s * stage.share / total
            print(f"[{index}/{len(plan)}] {stage.name} on {stage.device.upper()} (up to {budget:.0f} s)", flush=True)
            result = run_stage(stage, backend, budget, Path(tmp) / f"stage{index}", extra, space)
            results.append(result)
            print(f"    {json.dumps(asdict(result))}", flush=True)
            log_lines = (Path(tmp) / f"stage{index}" / "log.txt").read_text(errors="replace").splitlines()
            logs.append(f"===== stage {index}: {stage.name} on {stage.device} =====\n" + "\n".join(log_lines[-150:]))
            (args.out / "gpu_check.json").write_text(
                json.dumps({"machine": machine, "backend": backend, "results": [asdict(r) for r in results]}, indent=2)
            )
            (args.out / "logs.txt").write_text("\n\n".join(logs))
    text = table(results, backend, machine)
    (args.out / "gpu_check.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
