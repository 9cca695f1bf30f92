"""`python -m search +space=<name>`: compose the config, run the search, print the summary.

Kept thin: Hydra composes, `search.command.jobs` runs a job, `search.command.runner` does the work. Bad input ends with
one line on stderr and exit code 2 (Hydra's own composition errors included); an interrupt (Ctrl-C or SIGTERM) ends the runs
as KILLED and exits 130; a search that ran but could not finish (every trial failed, a bug) exits 3.
"""

from __future__ import annotations

from search.core.quiet import quiet_start_up

quiet_start_up()  # before anything below imports TensorFlow, gRPC or MLflow

import dataclasses  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.types import RunMode  # noqa: E402

from search.command import hydra_errors  # noqa: E402
from search.command.composed import CONF_DIR, data_choice_error, git_commit, missing_setting  # noqa: E402
from search.command.jobs import leave_after_full_disk, run_job, run_multirun_job  # noqa: E402
from search.config import register_configs  # noqa: E402
from search.core import interrupts  # noqa: E402
from search.core.exits import EXIT_INTERRUPTED, EXIT_SEARCH_FAILED, EXIT_USAGE  # noqa: E402
from search.core.files import disk_full, full_disk_line, write_atomic  # noqa: E402
from search.core.secrets import redact  # noqa: E402
from search.plan.planning import RunLabels  # noqa: E402

if TYPE_CHECKING:
    from omegaconf import DictConfig

register_configs()


def available_spaces() -> list[str]:
    return sorted(path.stem for path in (CONF_DIR / "space").glob("*.yaml"))


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra entry point: one search per (multirun) job; the sweep's exit code comes from `search.command.sweep.SweepSummary`."""
    hydra_errors.HELD.release()
    if not cfg.space:
        print(f"choose a search space: python -m search +space=<{'|'.join(available_spaces())}>", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    interrupts.install()
    hydra_cfg = HydraConfig.get()
    data_choice = hydra_cfg.runtime.choices.get("data") or ""
    missing = data_choice_error(data_choice) or missing_setting(cfg, data_choice) or resume_without_run_dir(cfg, hydra_cfg)
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    run_dir = Path(hydra_cfg.runtime.output_dir)
    redact_saved_config(run_dir / hydra_cfg.output_subdir if hydra_cfg.output_subdir else None)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        redact_saved_config(Path(hydra_cfg.sweep.dir))  # multirun.yaml
    data_file = Path(cfg.data.path).stem if cfg.data.get("source") == "csv" else None
    labels = RunLabels(
        space=hydra_cfg.runtime.choices.get("space"), data=cfg.data.name, git_commit=git_commit(), data_file=data_file
    )
    if hydra_cfg.mode != RunMode.MULTIRUN:
        code, error = run_job(cfg, run_dir, labels)
        leave_after_full_disk(code, error)
    else:
        sweep = dataclasses.replace(labels, sweep_id=str(hydra_cfg.sweep.dir), sweep_job=str(hydra_cfg.job.num))
        overrides = list(hydra_cfg.overrides.task)
        code = run_multirun_job(cfg, run_dir, sweep, hydra_cfg.job.num, overrides, parallel_jobs(hydra_cfg))
        code = code if code == EXIT_INTERRUPTED else 0  # a failed job is in its summary.json; the sweep goes on
    if code:
        sys.exit(code)


def resume_without_run_dir(cfg: DictConfig, hydra_cfg: DictConfig) -> str | None:
    """`search.resume=true` without `hydra.run.dir=`: Hydra's default run dir is new on every command, so there is
    nothing in it to resume and the search would start afresh in a place its user will not look."""
    if not cfg.search.resume or hydra_cfg.mode == RunMode.MULTIRUN:
        return None
    if any(override.lstrip("+").startswith("hydra.run.dir=") for override in hydra_cfg.overrides.hydra):
        return None
    return "search.resume=true needs the search's directory: add hydra.run.dir=<the run dir it was started in>"


def parallel_jobs(hydra_cfg: DictConfig) -> int:
    """How many multirun jobs run side by side: the joblib launcher's `n_jobs` (negative: all cores but n - 1), else 1."""
    from omegaconf import OmegaConf

    from search.plan.cores import available_cores

    n_jobs = OmegaConf.select(hydra_cfg, "launcher.n_jobs")
    if not n_jobs:
        return 1
    return max(1, available_cores() + 1 + n_jobs if n_jobs < 0 else n_jobs)


def redact_saved_config(hydra_dir: Path | None) -> None:
    """Hydra saves the composed config and the command line in `.hydra/`: keep a tracking URI's password out of them."""
    for path in sorted(hydra_dir.glob("*.yaml")) if hydra_dir and hydra_dir.is_dir() else ():
        text = path.read_text()
        if redact(text) != text:
            write_atomic(path, redact(text))


def unwritable_run_dir(argv: list[str]) -> str | None:
    """The `hydra.run.dir=` override if it cannot be created: Hydra makes it before `main` runs, with a traceback."""
    values = [arg.split("=", 1)[1] for arg in argv if arg.startswith(("hydra.run.dir=", "++hydra.run.dir="))]
    if not values or "${" in values[-1]:
        return None
    path = Path(values[-1]).expanduser().absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
        return None
    return values[-1]


def cli() -> None:
    """Run `main`; Hydra's own composition errors (unknown key, wrong type, bad value) exit 2 with one line."""
    bad_dir = unwritable_run_dir(sys.argv[1:])
    if bad_dir:
        print(f"error: hydra.run.dir={bad_dir!r} cannot be created or written; choose another directory", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    hydra_errors.HELD.hold()
    try:
        main()
    except Exception as err:  # raised out of a multirun (`SweepSummary.on_multirun_start` lets Hydra re-raise)
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException

        where = disk_full(err)
        if where is not None:  # the launcher could not save a job's config
            print(f"error: {full_disk_line(where)}", file=sys.stderr)
            sys.exit(EXIT_SEARCH_FAILED)
        if isinstance(err, HydraException | OmegaConfBaseException):  # a sweep's job that cannot be composed
            cause = f"\n{err.__cause__}" if err.__cause__ is not None else ""
            print(f"error: {hydra_errors.one_line(f'{err}{cause}')}", file=sys.stderr)
            sys.exit(EXIT_USAGE)
        raise
    except SystemExit as exit_:
        error = hydra_errors.HELD.error_line() if exit_.code == 1 else None
        if error is not None:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(EXIT_USAGE)
        hydra_errors.HELD.release()
        sys.exit(EXIT_USAGE if exit_.code == 1 else exit_.code)
    finally:
        hydra_errors.HELD.release()


if __name__ == "__main__":
    cli()
