"""Bad input: one line naming the field and what to do, exit code 2, no traceback, no run left RUNNING."""

import pytest
from mlflow.tracking import MlflowClient

from data.errors import UserError
from search.plan.planning import Request, make_plan
from tests.conftest import TINY, free_port, run_cli
from tests.test_spaces import compose_config


def _csv(tmp_path, text: str | bytes) -> str:
    path = tmp_path / "input.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


GAPPY = "t,v\n2020-01-01,1\n2020-01-02,\n2020-01-03,3\n"
CSV = ["data=csv", "data.column=v"]

# (id, overrides, text that must appear in the one line); "{csv:...}" writes that CSV first.
CASES = [
    ("missing csv", [*CSV, "data.path=nowhere.csv"], "data.path='nowhere.csv': no such file"),
    ("unreadable csv", [*CSV, "data.path={csv:binary}"], "cannot be read as CSV"),
    ("missing column", ["data=csv", "data.column=w", "data.path={csv:numbers}"], "data.column='w' is not a column"),
    ("non-numeric", [*CSV, "data.path={csv:text}"], "non-numeric value 'abc' at row 3"),
    ("gaps with policy error", [*CSV, "data.time_column=t", "data.path={csv:gappy}"], "set data.gaps=interpolate"),
    ("constant series", [*CSV, "data.path={csv:constant}"], "is constant"),
    ("series too short", ["data.length=40", "data.test_size=0"], "space.window_size"),
    ("window >= split_time", ["space.split_time.value=25", "space.window_size.max=30"], "space.window_size=30"),
    ("split_time past the end", ["space.split_time.value=5000"], "space.split_time=5000 is past"),
    ("test_size too large", ["data.test_size=5000"], "data.test_size=5000"),
    ("min > max", ["space.lstm_units.min=100"], "space.lstm_units.min=100 is greater than space.lstm_units.max"),
    ("empty choice", ["space.filters.values=[]"], "space.filters.values is empty"),
    ("unknown kind", ["space.filters.kind=gaussian"], "space.filters.kind='gaussian' is unknown"),
    ("unknown model", ["space.model.value=transformer"], "space.model must be fixed to one of"),
    ("unknown optimizer", ["space.optimizer.value=adamw"], "space.optimizer='adamw' is unknown"),
    ("unknown loss", ["space.loss.value=hinge"], "space.loss='hinge' is unknown"),
    ("batch_size <= 0", ["space.batch_size.values=[0,32]"], "space.batch_size must be >= 1"),
    ("zero epochs", ["tuner.max_epochs=0"], "tuner.max_epochs=0 must be >= 1"),
    ("unknown scaling", ["space.scaling.value=minmax"], "space.scaling='minmax' is unknown"),
    ("seasons without a season", ["data.season_length=0", "space.seasons.value=1"], "space.seasons=1 needs a season"),
    ("seasonal scaling without a season", ["data.season_length=0", "space.scaling.value=seasonal"], "space.scaling=seasonal"),
    ("negative ar_skip", ["space.ar_skip.values=[-1]"], "space.ar_skip=-1 must be an integer >= 0"),
    ("season too long for the series", ["data.season_length=5000"], "data.season_length=5000 (through space.seasons"),
    ("ar_skip past split_time", ["space.ar_skip.values=[0,1200]"], "space.ar_skip: a trial's input reaches 1200 points"),
    ("season halfwidth too wide", ["data.season_length=5", "space.season_halfwidth.values=[5]"], "space.season_halfwidth=5"),
    ("zero backtest candidates", ["search.select.top_k=0"], "search.select.top_k=0 must be >= 1"),
    ("zero blend rounds", ["search.blend_rounds=0"], "search.blend_rounds=0 must be >= 1"),
    ("negative seed", ["seed=-1"], "seed=-1 must be in [0, 2**32)"),
    ("zero horizon", ["data.horizon=0"], "data.horizon=0 must be an integer >= 1"),
    ("horizon past the test tail", ["data.test_size=5", "data.horizon=7"], "data.test_size=5 is shorter than data.horizon=7"),
    ("horizon past the validation points", ["data.test_size=0", "data.horizon=400"], "data.horizon=400 is longer than the"),
    ("interval level outside (0, 1)", ["search.intervals=[0.8,95]"], "search.intervals: 95.0 is not a level in (0, 1)"),
    ("interval level too fine", ["search.intervals=[0.999]"], "a 0.999 interval needs at least 999 scored validation origins"),
    ("cqr without levels", ["search.intervals_method=cqr"], "search.intervals_method=cqr needs levels"),
    ("per on another name", ["space.filters.per=horizon"], "space.filters.per='horizon' is not supported"),
]

CSVS = {
    "binary": b"v\n\xff\xfe\xfa\x80\n",
    "numbers": "v\n" + "\n".join(str(i % 7) for i in range(300)) + "\n",
    "text": "v\n1\nabc\n3\n",
    "gappy": GAPPY,
    "constant": "v\n" + "5\n" * 300,
}


def _materialise(tmp_path, overrides: list[str]) -> list[str]:
    """The overrides with each `{csv:<name>}` replaced by the path of that CSV, written to `tmp_path`."""
    args = []
    for item in overrides:
        if "{csv:" in item:
            key = item.split("{csv:")[1].rstrip("}")
            item = item.split("{csv:")[0] + _csv(tmp_path, CSVS[key])
        args.append(item)
    return args


@pytest.mark.parametrize("overrides,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_by_planning_with_a_message_naming_the_field(tmp_path, overrides, message):
    """The whole table, in-process: what the planner checks (in milliseconds) before any run or TensorFlow."""
    cfg = compose_config("+space=conv_lstm", *_materialise(tmp_path, overrides))
    with pytest.raises(UserError) as error:
        make_plan(Request.of(cfg))
    assert message in str(error.value) and "\n" not in str(error.value)


# The contract through the real CLI, on a sample of the table: one line, exit 2, nothing written, nothing RUNNING.
CLI_CASES = [
    "missing csv",
    "non-numeric",
    "series too short",
    "min > max",
    "zero backtest candidates",
    "season too long for the series",
]


@pytest.mark.parametrize("case", CLI_CASES)
def test_bad_input_gets_one_line_and_exit_2(tmp_path, store, case):
    overrides, message = next(c[1:] for c in CASES if c[0] == case)
    args = _materialise(tmp_path, overrides)
    result = run_cli(["+space=conv_lstm", *args, f"hydra.run.dir={tmp_path / 'run'}"], store, tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0]
    key_given = next((arg.split("=")[0] for arg in args if arg.split("=")[0] in message), None)
    assert key_given is None or lines[0].startswith(f"error: {key_given}")  # the key the user gave, named first
    assert not (tmp_path / "run" / "summary.json").exists()
    _assert_no_run_left_running(store)


def _assert_no_run_left_running(store):
    client = MlflowClient(store)
    experiments = client.search_experiments()
    if experiments:
        runs = client.search_runs([e.experiment_id for e in experiments])
        assert not [r for r in runs if r.info.status == "RUNNING"]


@pytest.mark.parametrize(
    "override",
    [
        "tuner.name=grid",
        "mode=tune",
        "lr_find.per=minute",
        "search.ensemble_of=votes",
        "search.intervals_method=bootstrap",
        "search.distributed.role=boss",
        "data.gaps=guess",
    ],
)
def test_a_value_outside_a_fixed_set_is_refused_at_composition(override):
    """Fixed sets of values are Enums in the structured config: Hydra refuses others, naming the field and the choices."""
    from hydra.errors import HydraException

    extra = ["data=csv"] if override.startswith("data.") else []
    with pytest.raises(HydraException) as error:
        compose_config("+space=conv_lstm", *extra, override)
    key, value = override.split("=")
    assert f"Invalid value '{value}', expected one of" in str(error.value.__cause__ or error.value)


@pytest.mark.parametrize(
    "override,field",
    [
        ("tuner.max_epoch=3", "max_epoch"),
        ("tuner.max_epochs=abc", "tuner.max_epochs"),
        ("tuner=grid", "tuner"),
        ("mode=tune", "mode"),
        ("data=synthetic_schema", "data=synthetic_schema is a schema"),  # Hydra lists it among the data options
    ],
)
def test_composition_errors_are_one_line_and_exit_2(tmp_path, override, field):
    """Hydra's multi-line composition errors (unknown key, wrong type, bad value) reach the user as one line, exit 2."""
    result = run_cli(["+space=conv_lstm", override], None, tmp_path, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and field in lines[0], result.stderr
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("sweep,field", [("seed=abc,1", "seed=abc"), ("data=typo,synthetic", "data/typo")])
def test_a_sweep_job_that_cannot_be_composed_is_one_line_and_exit_2(tmp_path, sweep, field):
    """A multirun composes each job's config when it launches it (after the sweep started): a bad value there is the
    same one line and exit code 2, no traceback."""
    args = ["-m", "+space=linear", sweep, f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    result = run_cli(args, f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and field in lines[0], result.stderr


@pytest.mark.parametrize("given,missing", [(["data.path=x.csv"], "data.column"), (["data.column=v"], "data.path")])
def test_a_csv_without_its_path_or_column_is_one_line_naming_it(tmp_path, given, missing):
    result = run_cli(["+space=conv_lstm", "data=csv", *given, f"hydra.run.dir={tmp_path / 'run'}"], None, tmp_path, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {missing} is not set"), result.stderr
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize(
    "override,quoted",
    [
        ("data.column=(a", 'data.column="(a"'),
        ("data.column=Température", 'data.column="Température"'),  # a lexer error: Hydra's line does not say quote
        ("data.path=/tmp/sales (2026).csv", 'data.path="/tmp/sales (2026).csv"'),
    ],
)
def test_a_value_hydra_cannot_parse_is_named_with_the_same_override_quoted(tmp_path, override, quoted):
    extra = ["data.path=x.csv"] if override.startswith("data.column") else ["data.column=v"]
    result = run_cli(["+space=conv_lstm", "data=csv", *extra, override], None, tmp_path, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {override} cannot be read"), result.stderr
    assert lines[0].endswith(f"as '{quoted}'")


def test_an_unwritable_run_dir_is_refused(tmp_path, store):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_cli(["+space=conv_lstm", f"hydra.run.dir={blocker}/run"], store, tmp_path, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert str(blocker) in result.stderr


def test_a_tracking_server_that_is_down_fails_before_training(tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"
    result = run_cli(["+space=conv_lstm", *TINY, f"hydra.run.dir={tmp_path / 'run'}"], uri, tmp_path, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot be reached" in lines[0] and uri in lines[0]
    assert not (tmp_path / "run" / "tuner").exists()


def test_a_reused_run_dir_needs_resume(tmp_path, store):
    run_dir = tmp_path / "run"
    (run_dir / "tuner").mkdir(parents=True)
    result = run_cli(["+space=conv_lstm", f"hydra.run.dir={run_dir}"], store, tmp_path, timeout=120)
    assert result.returncode == 2 and "add search.resume=true" in result.stderr


def test_resume_needs_the_run_dir_it_resumes(tmp_path, store):
    """Hydra's default run dir is new on every command: a resume without hydra.run.dir would start a fresh search."""
    result = run_cli(["+space=conv_lstm", "search.resume=true"], store, tmp_path, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: search.resume=true needs the search's directory: add hydra.run.dir=<the run dir it was started in>"
    ]


def test_secrets_in_a_tracking_uri_are_redacted():
    from search.core.secrets import redact

    assert redact("https://alice:s3cret@mlflow.example.org/x") == "https://***@mlflow.example.org/x"
    assert redact("http://alice:p@ss@10.0.0.1:5000/x@y") == "http://***@10.0.0.1:5000/x@y"  # "@" in the password
    assert redact("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"
    assert "s3cret" not in redact("tracking:\n  uri: http://bob:s3cret@10.0.0.1:5000\n")


def test_a_password_in_the_tracking_uri_appears_in_no_output_or_file(tmp_path):
    """A server that is down, named with a password (holding "@") on the command line: the one-line error, stdout
    and the config Hydra saves in the run dir carry `***` instead."""
    run_dir = tmp_path / "run"
    uri = f"http://alice:p@ss-w0rd@127.0.0.1:{free_port()}"
    result = run_cli(["+space=conv_lstm", *TINY, f"tracking.uri={uri}", f"hydra.run.dir={run_dir}"], None, tmp_path, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot be reached" in lines[0] and "http://***@127.0.0.1" in lines[0]
    saved = [path.read_text() for path in (run_dir / ".hydra").glob("*.yaml")]
    assert saved and all("***@127.0.0.1" in text or "tracking" not in text for text in saved)
    for text in [result.stdout, result.stderr, *saved]:
        assert "ss-w0rd" not in text


@pytest.mark.parametrize("experiment_exists", [False, True], ids=["new experiment", "existing experiment"])
def test_a_read_only_store_is_one_line_before_training(tmp_path, store, experiment_exists):
    """sqlite's read-only mode (no root tricks): the first write is refused, named, and nothing is trained."""
    path = store.removeprefix("sqlite:///")
    if experiment_exists:
        MlflowClient(store).create_experiment("synthetic-conv_lstm")
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    result = run_cli(["+space=conv_lstm", *TINY, f"hydra.run.dir={tmp_path / 'run'}"], read_only, tmp_path, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused a write" in lines[0] and "readonly database" in lines[0], result.stderr[-2000:]
    assert not (tmp_path / "run" / "tuner").exists()
