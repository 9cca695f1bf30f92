"""Planning is cheap and TensorFlow-free: bad input is refused before the (slow) TensorFlow import."""

import json
import subprocess
import sys

from tests.conftest import ROOT, cli_env

PLAN_AND_CONNECT = """
import json, sys
from pathlib import Path
from hydra import compose, initialize_config_dir
from search.config import register_configs
from search.plan.planning import Request, RunLabels, make_plan
from search.plan.run_dir import prepare_run_dir
from search.record.tracking import connect
import search.__main__, search.command.jobs  # the entry point's own imports

register_configs()
with initialize_config_dir(config_dir=str(Path("conf").resolve()), version_base="1.3"):
    overrides = ["+space=conv_lstm", "data.length=800", "data.test_size=60", "data.season_length=0"]
    cfg = compose(config_name="config", overrides=overrides)
plan = make_plan(Request.of(cfg))
prepare_run_dir(Path(sys.argv[1]) / "run", resume=False)
tracker = connect(cfg.tracking, cfg.data, Path(sys.argv[1]), RunLabels(space="conv_lstm", data="synthetic"))
heavy = [name for name in ("tensorflow", "keras", "keras_tuner") if name in sys.modules]
print(json.dumps({"heavy": heavy, "points": len(plan.series), "experiment": tracker.experiment_name}))
"""


def test_nothing_imports_tensorflow_before_config_data_run_dir_and_store_are_checked(tmp_path):
    """The rule `search.command.runner` relies on: composing, planning, preparing the run dir and reaching the tracking
    store import neither TensorFlow nor Keras, so bad input costs a second, not TensorFlow's start-up."""
    env = {**cli_env(f"sqlite:///{tmp_path / 'mlflow.db'}")}
    result = subprocess.run(
        [sys.executable, "-c", PLAN_AND_CONNECT, str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"heavy": [], "points": 800, "experiment": "synthetic-conv_lstm"}


def test_the_builder_registry_is_import_light_and_builders_load_on_demand():
    code = (
        "import sys, json; import models; before = 'keras' in sys.modules; "
        "names = sorted(models.BUILDERS); build = models.BUILDERS['linear']; "
        "print(json.dumps([before, names, 'keras' in sys.modules, build.__module__]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=cli_env(None), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    before, names, after, module = json.loads(result.stdout.strip().splitlines()[-1])
    assert before is False and after is True and module == "models.linear"
    assert names == ["conv_lstm", "dnn", "gru", "linear", "lstm", "rnn"]
