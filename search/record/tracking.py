"""MLflow bookkeeping: one parent run per search, one nested child run per Keras Tuner trial.

Everything goes through `MlflowClient` with explicit run ids (no global active run), so a child
run is closed with the right status whatever the tuner does, and a resumed search reattaches to
its parent run by id.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from data.errors import UserError, first_line
from data.sources import series_source
from search.core import interrupts
from search.core.quiet import MLFLOW_REGISTRATION, stderr_without
from search.core.secrets import redact
from search.record.sqlite_store import create_sqlite_store_whole, sqlite_path, store_creation_lock

if TYPE_CHECKING:
    import keras
    import numpy as np
    from matplotlib.figure import Figure
    from mlflow.entities import Experiment, Run, RunInfo
    from mlflow.models import ModelSignature
    from mlflow.tracking import MlflowClient
    from omegaconf import DictConfig

SOURCE_NAME = "python -m search"


UI_PORT = 5000
VIEW_KEY = "trials"  # the shared view (`Tracker.share_view`) a search's URL opens


def ui_command(uri: str) -> str:
    """How to start a UI on the store at `uri`: `mlflow ui` with the light settings (2 processes instead of ~10,
    ~0.5 GB instead of ~2.7: no GenAI job runners, one web worker); a server is its own UI."""
    if uri.startswith(("http://", "https://")):
        return f"open {redact(uri)}"
    return f"MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false mlflow ui --backend-store-uri {redact(uri)} --port {UI_PORT} --workers 1"


def ui_url(uri: str, experiment_id: str) -> str:
    """The page of the experiment's runs table (not MLflow 3's GenAI overview), with the search's columns."""
    base = redact(uri).rstrip("/") if uri.startswith(("http://", "https://")) else f"http://127.0.0.1:{UI_PORT}"
    return f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning&viewStateShareKey={VIEW_KEY}"


def resolve_uri(configured: str | None, launch_dir: Path) -> str:
    """`MLFLOW_TRACKING_URI` if set, else `tracking.uri`, else an absolute sqlite file in the launch dir."""
    return os.environ.get("MLFLOW_TRACKING_URI") or configured or f"sqlite:///{(launch_dir / 'mlflow.db').resolve()}"


def default_artifact_location(uri: str) -> str | None:
    """Artifacts beside a sqlite file (not under whoever's working directory); a server picks its own."""
    path = sqlite_path(uri)
    return (path.parent / "mlartifacts").resolve().as_uri() if path is not None else None


class UninterruptedClient:
    """An `MlflowClient` whose every call finishes before a Ctrl-C or SIGTERM is acted on.

    A `KeyboardInterrupt` raised inside MLflow's SQLAlchemy session can leave a sqlite write lock
    held by a connection that only the traceback still references: every later write, closing the
    runs as KILLED included, then waits out MLflow's 20 s busy timeout and fails "database is locked".
    """

    def __init__(self, client: MlflowClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def call(*args: Any, **kwargs: Any) -> Any:
            with interrupts.critical():
                return attribute(*args, **kwargs)

        return call


def source_tags(git_commit: str | None) -> dict[str, str]:
    """MLflow's own tags for who ran what (its UI's "User", "Source" and "Version" columns): runs made with the
    client, as ours are, get none of them unless they are set."""
    import getpass

    from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT, MLFLOW_SOURCE_NAME, MLFLOW_SOURCE_TYPE, MLFLOW_USER

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        user = str(os.getuid())
    tags = {MLFLOW_USER: user, MLFLOW_SOURCE_NAME: SOURCE_NAME, MLFLOW_SOURCE_TYPE: "LOCAL"}
    if git_commit and git_commit != "unknown":
        tags[MLFLOW_GIT_COMMIT] = git_commit
    return tags


class Tracker:
    """An MLflow experiment and the runs of one search in it."""

    common_tags: Mapping[str, str] = {}  # on every run this tracker creates (`source_tags`)
    dataset = None  # the searched series as an MLflow dataset, logged as an input of the parent run and each trial

    def __init__(self, uri: str, experiment: str, artifact_location: str | None = None) -> None:
        import mlflow
        from mlflow.tracking import MlflowClient

        self.uri = uri
        registry = os.environ.get("MLFLOW_REGISTRY_URI") or uri
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(registry)
        # MLflow logs every database error with its traceback before raising it: the raised error is reported instead.
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
        with store_creation_lock(uri):  # MLflow creates a fresh sqlite file's tables here: one process at a time
            create_sqlite_store_whole(uri)
            self._client = UninterruptedClient(MlflowClient(tracking_uri=uri, registry_uri=registry))
            found = self._probe(experiment)
        self.experiment_name = experiment
        location = artifact_location or default_artifact_location(uri)
        self.experiment_id = found.experiment_id if found else self._create_experiment(experiment, location)
        self.parent_id: str | None = None
        self._logging_thread: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []

    def _probe(self, experiment: str) -> Experiment | None:
        """Reach the store (`PROBE_SETTINGS`: quickly) and look the experiment up; a store that cannot be reached is a
        `UserError`."""
        try:
            with _probing():
                return self._client.get_experiment_by_name(experiment)
        except Exception as err:  # noqa: BLE001 - any failure to reach the store means the same to the user
            raise UserError(
                f"tracking store {redact(self.uri)} cannot be reached ({redact(first_line(err))}); start it or fix "
                "tracking.uri / MLFLOW_TRACKING_URI"
            ) from None

    def _create_experiment(self, name: str, location: str | None) -> str:
        """Create the experiment; if a process beside this one (a sweep job, a worker) just did, use theirs."""
        from mlflow.exceptions import MlflowException

        try:
            with self._first_write():
                return self._client.create_experiment(name, artifact_location=location and f"{location}/{name}")
        except (MlflowException, UserError) as err:
            found = self._client.get_experiment_by_name(name)
            if found is None:
                raise err from None
            return found.experiment_id

    @contextmanager
    def _first_write(self) -> Iterator[None]:
        """A search's first write to the store: a store that refuses it (read-only) is one line, before any training.

        (MLflow's own log of the database error is held back for the whole process: see `__init__`.)
        """
        from mlflow.exceptions import MlflowException

        try:
            yield
        except MlflowException as err:
            lines = str(err).splitlines()
            cause = next((line for line in lines if line.startswith("(") and "Error)" in line), first_line(err))
            raise UserError(
                f"tracking store {redact(self.uri)} refused a write ({redact(cause[:200])}); make it writable, "
                "or point tracking.uri / MLFLOW_TRACKING_URI at a writable store"
            ) from None

    @property
    def registry_client(self) -> UninterruptedClient:
        """The client for the Model Registry (`search.choose.registry`): versions, their tags, aliases."""
        return self._client

    def ui_command(self) -> str:
        return ui_command(self.uri)

    def ui_url(self) -> str:
        return ui_url(self.uri, self.experiment_id)

    def share_view(self, hyperparameters: list[str]) -> None:
        """Make the experiment open on its runs table, showing what a search is compared by.

        MLflow 3's UI opens an experiment on its GenAI overview unless the experiment's kind says it
        is model training, and shows no param or metric column by default. Its "share view" feature
        keeps a view (columns, order) in an experiment tag `mlflow.sharedViewState.<key>` that the
        URL names (`viewStateShareKey`, see `ui_url`): the search's view has best_val_mae and the
        searched hyperparameters as columns, in the space's order, best first.
        """

        def column(kind: str, name: str) -> str:
            return f"{kind}.`{name}`"

        columns = [column("metrics", "best_val_mae"), column("metrics", "test_mae")]
        columns += [column("params", name) for name in hyperparameters]
        columns += [column("tags", "worker")]  # (Dataset, Source: the UI's default columns, one click away in Columns)
        # columnOrder: the space's order (the UI sorts params alphabetically, pushing window_size off-screen).
        view = {"selectedColumns": columns, "columnOrder": columns, "orderByKey": column("metrics", "best_val_mae")}
        view["orderByAsc"] = True
        self._set_experiment_tag("mlflow.experimentKind", "custom_model_development")
        self._set_experiment_tag(f"mlflow.sharedViewState.{VIEW_KEY}", json.dumps(view))

    def _set_experiment_tag(self, key: str, value: str) -> None:
        """An experiment tag, set once more where a job beside this one inserted it at the same instant: sweep jobs
        on one server each set the experiment's tags as they start, and MLflow sets a new tag with a plain INSERT, so
        the second insert fails the UNIQUE constraint (found by the eight-job sweep test). The row exists then: the
        second call updates it."""
        try:
            self._client.set_experiment_tag(self.experiment_id, key, value)
        except Exception as err:  # noqa: BLE001 - narrowed just below
            if "UNIQUE constraint failed: experiment_tags" not in str(err) and "Duplicate entry" not in str(err):
                raise
            self._client.set_experiment_tag(self.experiment_id, key, value)

    def _create_run(self, run_name: str, tags: Mapping[str, str], parent_id: str | None, dataset_context: str | None) -> str:
        """A new run with this tracker's `common_tags`, nested under `parent_id` if given, and the series as its
        dataset input in the role `dataset_context` (none if None)."""
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        tags = {**self.common_tags, **({MLFLOW_PARENT_RUN_ID: parent_id} if parent_id else {}), **tags}
        run_id = self._client.create_run(self.experiment_id, run_name=run_name, tags=tags).info.run_id
        if dataset_context:
            self.log_dataset(run_id, dataset_context)
        return run_id

    def start_parent(self, run_name: str, tags: Mapping[str, str]) -> str:
        with self._first_write():
            self.parent_id = self._create_run(run_name, tags, None, "search")
        return self.parent_id

    def resume_parent(self, run_id: str) -> str:
        with self._first_write():
            self._client.update_run(run_id, status="RUNNING")
        self.parent_id = run_id
        return run_id

    def attach_parent(self, run_id: str) -> str:
        """Log children under a parent run that another process owns (a distributed worker under the chief's)."""
        self.parent_id = run_id
        return run_id

    def start_run(self, run_name: str, tags: Mapping[str, str], parent_id: str | None = None) -> str:
        """A run of its own (the LR range test), nested under `parent_id` if given."""
        with self._first_write():
            return self._create_run(run_name, tags, parent_id, "training")

    @contextmanager
    def closing(self, create: Callable[[], str], *, finish: bool = True, interrupted: str | None = None) -> Iterator[str]:
        """Open a run with `create()` and yield its id; the run never stays RUNNING after the block.

        The run is created with interrupts held, so its id is known before an interrupt can act. An
        interrupt (Ctrl-C, SIGTERM) ends it KILLED, an exception FAILED (the traceback in tag
        `error`), a normal exit FINISHED, unless `finish` is false: then the caller ends it (a
        trial's run is closed on the logging thread once its artifacts are in). Whatever was handed
        to the logging thread goes in before a run is closed as KILLED or FAILED.
        """
        run_id = None
        try:
            with interrupts.critical():  # an interrupt that came meanwhile is raised here, once the id is known
                run_id = create()
            yield run_id
        except (KeyboardInterrupt, SystemExit) as err:
            if run_id is not None:
                self._close_after(run_id, "KILLED", interrupted or f"interrupted ({str(err) or type(err).__name__})")
            raise
        except BaseException as err:
            if run_id is not None:
                self._close_after(run_id, "FAILED", f"{type(err).__name__}: {err}\n\n{traceback.format_exc()}")
            raise
        if finish:
            self.end(run_id, "FINISHED")

    def _close_after(self, run_id: str, status: str, error: str) -> None:
        """End a run after what stopped it; a store that cannot take the write (the disk is full, the server is
        gone) leaves it RUNNING for the resume to close (`tuning.close_stale_runs`), and the first error stands."""
        with interrupts.critical():  # a second signal waits: the run is closed first
            try:
                self.drain()
                self.end(run_id, status, error=error)
            except Exception:  # noqa: BLE001, S110 - the error that stopped the run is the one to report
                pass

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        self._client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def status(self, run_id: str) -> str:
        return self._client.get_run(run_id).info.status

    def latest_run(self, filter_string: str, by: str) -> RunInfo | None:
        """The RunInfo of this experiment's run matching `filter_string` with the latest `by` time (start_time,
        end_time), or None."""
        runs = self._client.search_runs(
            [self.experiment_id], filter_string=filter_string, order_by=[f"attributes.{by} DESC"], max_results=1
        )
        return runs[0].info if runs else None

    def log_model_to_parent(
        self, model: keras.Model, signature: ModelSignature, requirements: list[str], registered_name: str
    ) -> str:
        """Log `model` as the parent run's `model` artifact and register it as a new version of `registered_name`;
        returns the version. The parent stays RUNNING (MLflow's fluent run would end it)."""
        import mlflow

        with self._logging_on_parent():
            info = mlflow.keras.log_model(
                model, name="model", signature=signature, pip_requirements=requirements, registered_model_name=registered_name
            )
        return str(info.registered_model_version)

    @contextmanager
    def _logging_on_parent(self) -> Iterator[None]:
        """MLflow's fluent run on the parent (a model logs through it), kept from being interrupted, without MLflow's
        registration lines; the parent stays RUNNING after it (the fluent run would end it)."""
        import mlflow

        with interrupts.critical(), mlflow.start_run(run_id=self.parent_id, nested=True), stderr_without(MLFLOW_REGISTRATION):
            yield
        self._client.update_run(self.parent_id, status="RUNNING")

    def log_pyfunc_to_parent(
        self,
        python_model: Path,
        artifacts: dict,
        config: dict,
        signature: ModelSignature,
        requirements: list[str],
        registered_name: str,
    ) -> str:
        """Log a pyfunc model from code (`python_model`, a file; `artifacts` by name; `config` its model_config) as the
        parent run's `model` artifact, registered as a new version of `registered_name`; returns the version."""
        import mlflow

        with self._logging_on_parent(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # MLflow's advice to type-hint predict (the signature is given)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(python_model),
                artifacts=artifacts,
                model_config=config,
                signature=signature,
                pip_requirements=requirements,
                registered_model_name=registered_name,
            )
        return str(info.registered_model_version)

    def start_trial(self, trial_id: str, params: Mapping[str, Any], tags: Mapping[str, str], run_name: str | None = None) -> str:
        """A child run for one trial, with every hyperparameter as a param; earlier runs of a re-run trial are superseded."""
        for old in self.trial_runs(trial_id):
            if old.info.status != "KILLED":
                self._client.set_terminated(old.info.run_id, status="KILLED")
            self._client.set_tag(old.info.run_id, "superseded", "true")
        run_tags = {"trial_id": trial_id, "status": "RUNNING", **tags}
        run_id = self._create_run(run_name or f"trial-{trial_id}", run_tags, self.parent_id, "training")
        self.log_params(run_id, params)
        return run_id

    def start_stage_run(self, stage: str, key: str, params: Mapping[str, Any], tags: Mapping[str, str] | None = None) -> str:
        """A child run for one fit after the search (tag `stage`: backtest, refit, ensemble), named `<stage>-<key>`.

        A resumed search re-runs its stages: earlier runs of the same stage and key are closed KILLED and
        tagged `superseded`, so every fit appears once.
        """
        earlier = self._client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{self.parent_id}' and tags.stage = '{stage}' and tags.stage_key = '{key}'",
        )
        for old in earlier:
            if old.info.status == "RUNNING":
                self._client.set_terminated(old.info.run_id, status="KILLED")
            self._client.set_tag(old.info.run_id, "superseded", "true")
        run_tags = {"stage": stage, "stage_key": key, "status": "RUNNING", **(tags or {})}
        run_id = self._create_run(f"{stage}-{key}", run_tags, self.parent_id, None)
        self.log_params(run_id, params)
        return run_id

    def stage_run(
        self, stage: str, key: str, params: Mapping[str, Any], tags: Mapping[str, str] | None = None
    ) -> AbstractContextManager[str]:
        """`start_stage_run` as a block (`closing`): the fit's run ends FINISHED, FAILED or KILLED with it."""
        return self.closing(functools.partial(self.start_stage_run, stage, key, params, tags))

    def trial_runs(self, trial_id: str) -> list[Run]:
        """Child runs of this search already logged for `trial_id` (from an interrupted attempt)."""
        return self._client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{self.parent_id}' and tags.trial_id = '{trial_id}'",
        )

    def runs_tagged(self, tag: str, value: str) -> list[Run]:
        """This experiment's runs whose tag `tag` is `value`."""
        return self._client.search_runs([self.experiment_id], filter_string=f"tags.{tag} = '{value}'", max_results=1000)

    def running_children(self) -> list[Run]:
        """This search's child runs still marked RUNNING (after a crash: nothing of this process is running)."""
        return self._client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{self.parent_id}' and attributes.status = 'RUNNING'",
            max_results=1000,
        )

    @contextmanager
    def system_metrics(self, run_id: str, enabled: bool = True, interval_s: float = 10.0) -> Iterator[None]:
        """MLflow's system metrics (`system/cpu_utilization_percentage`, memory, disk, network; GPU utilisation and
        memory where `nvidia-ml-py` finds a GPU) on `run_id` every `interval_s` while the block runs; a resumed
        search goes on from the last step."""
        if not enabled:
            yield
            return
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)  # its start/stop notices are not news
        monitor = SystemMetricsMonitor(run_id, sampling_interval=interval_s, resume_logging=True, tracking_uri=self.uri)
        monitor.start()
        try:
            yield
        finally:
            with interrupts.critical():
                monitor.finish()

    def use_dataset(self, series: np.ndarray, name: str, source: str) -> None:
        """The searched series, to be logged as a dataset input (name, digest, source) of the parent run and each trial."""
        import mlflow.data
        from mlflow.data.code_dataset_source import CodeDatasetSource

        where = source if source.startswith("/") else CodeDatasetSource({"mlflow.source.name": source})
        self.dataset = mlflow.data.from_numpy(series, source=where, name=name)._to_mlflow_entity()

    def log_dataset(self, run_id: str, context: str) -> None:
        """The series as an input of `run_id` ("Dataset" in MLflow's runs table), with its role (`context`)."""
        if self.dataset is None:
            return
        from mlflow.entities import DatasetInput, InputTag
        from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

        inputs = [DatasetInput(self.dataset, tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)])]
        try:
            self._client.log_inputs(run_id, datasets=inputs)
        except Exception as err:  # noqa: BLE001 - narrowed just below
            # Two runs of one experiment logging the same new dataset at once (sweep jobs side by side on a server):
            # the second insert of the dataset row fails its UNIQUE constraint. The row exists now: link it again.
            if "UNIQUE constraint failed: datasets" not in str(err) and "Duplicate entry" not in str(err):
                raise
            self._client.log_inputs(run_id, datasets=inputs)

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        """All metrics of one step in a single `log_batch` call."""
        self.log_steps(run_id, [(step, metrics)])

    def log_steps(self, run_id: str, steps: list[tuple[int, Mapping[str, float]]]) -> None:
        """Many steps' metrics (a whole recorded curve) in as few `log_batch` calls as MLflow allows."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(name, float(value), now, step) for step, metrics in steps for name, value in metrics.items()]
        for start in range(0, len(batch), 1000):
            self._client.log_batch(run_id, metrics=batch[start : start + 1000])

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        self._client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])

    def params(self, run_id: str) -> dict[str, str]:
        """The params `run_id` holds (MLflow's params are immutable: a resumed run must not log one anew)."""
        return dict(self._client.get_run(run_id).data.params)

    def log_text(self, run_id: str, text: str, name: str) -> None:
        self._client.log_text(run_id, text, name)

    def log_json(self, run_id: str, payload: Any, name: str) -> None:
        self._client.log_text(run_id, json.dumps(payload, indent=2, default=str), name)

    def log_figure(self, run_id: str, figure: Figure, name: str) -> None:
        self._client.log_figure(run_id, figure, name)

    def in_background(self, task: Callable[[], None]) -> None:
        """Run `task` (artifact logging, closing a run) on the logging thread, in submission order.

        Training goes on meanwhile; `drain` waits for it. A failure is reported, not raised: a plot
        that could not be uploaded must not stop a search.
        """
        if self._logging_thread is None:
            self._logging_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-logging")
        self._pending.append(self._logging_thread.submit(task))

    def drain(self) -> None:
        """Wait until everything handed to `in_background` is logged."""
        pending, self._pending = self._pending, []
        for future in pending:
            try:
                future.result()
            except Exception as err:  # noqa: BLE001 - reported, and the search goes on
                print(f"warning: background MLflow logging failed: {first_line(err)}", file=sys.stderr, flush=True)

    def log_file(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        self._client.log_artifact(run_id, str(path), artifact_path)

    def end(self, run_id: str, status: str, error: str | None = None) -> None:
        """Close a run; FAILED and KILLED runs carry the error message as a tag."""
        with interrupts.critical():  # not left RUNNING with its status tag already set
            if error:
                self._client.set_tag(run_id, "error", error[:5000])
            self._client.set_tag(run_id, "status", {"FINISHED": "COMPLETED"}.get(status, status))
            self._client.set_terminated(run_id, status=status)


PROBE_SETTINGS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}
"""The first request to a tracking server: a server that is down refuses at once and fails within a few seconds (two
retries with a short backoff), not after MLflow's minutes of retries; a busy one (several searches, workers or a sweep
starting against it together, on a loaded machine) gets 20 s an attempt, as a single 5 s attempt did not."""


@contextmanager
def _probing() -> Iterator[None]:
    """Probe a tracking server with `PROBE_SETTINGS`: a server that is down fails now, not after minutes of retries.

    The search itself keeps MLflow's retries, so a server restarted mid-search loses nothing.
    """
    from unittest import mock  # (the standard library's way to set environment variables for a block)

    with mock.patch.dict(os.environ, PROBE_SETTINGS):
        yield


def connect(
    tracking_cfg: DictConfig,
    data_cfg: DictConfig,
    launch_dir: Path,
    labels: Any,  # a search.plan.planning.RunLabels (plan sits above record)
    series: np.ndarray | None = None,
) -> Tracker:
    """The tracking store and the search's experiment (`<data>-<space>` unless tracking.experiment is set),
    from the settings it owns: `tracking` (uri, experiment, artifact location) and, for the dataset input, `data`.

    Every run it creates carries MLflow's user/source/git tags and the Keras backend, and `series` (if given)
    as its dataset input.
    """
    uri = resolve_uri(tracking_cfg.uri, launch_dir)
    tracker = Tracker(uri, tracking_cfg.experiment or labels.experiment, tracking_cfg.artifact_location)
    tracker.common_tags = {**source_tags(labels.git_commit), "backend": labels.backend}  # runs compared across backends
    if series is not None:
        tracker.use_dataset(series, data_cfg.name, series_source(data_cfg))
    return tracker
