"""`backend=jax|torch|tensorflow|auto`: a search on JAX never imports TensorFlow, and its windows are TensorFlow's."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from bench.tiny import SMALL_DNN
from data.errors import UserError
from search.fit.backends import auto, installed, resolve
from tests.conftest import ROOT, TINY, cli_env, parent_and_children, run_cli

needs_jax = pytest.mark.skipif(not installed("jax"), reason='JAX is not installed: pip install -e ".[jax]"')

# Installed in every Python process of the search (sitecustomize), workers included: any attempt to import
# TensorFlow is written down with its stack, and fails.
TENSORFLOW_TRIPWIRE = textwrap.dedent(
    """
    import os, sys, traceback

    class _Tripwire:
        def find_spec(self, name, path=None, target=None):
            if name == "tensorflow" or name.startswith("tensorflow."):
                with open(os.environ["TF_TRIPWIRE_LOG"], "a") as log:
                    log.write(f"pid {os.getpid()} imported {name}:\\n" + "".join(traceback.format_stack()) + "\\n")
                raise ImportError(f"{name} is not to be imported with KERAS_BACKEND={os.environ.get('KERAS_BACKEND')}")
            return None

    sys.meta_path.insert(0, _Tripwire())
    """
)


@pytest.mark.slow
@needs_jax
def test_a_jax_search_runs_every_stage_without_importing_tensorflow(tmp_path, store):
    """Two workers, backtest, refit, ensemble, a quantile head: all on JAX; the registered model pins jax and loads as
    an MLflow pyfunc on TensorFlow. A dense space: XLA compiles each conv_lstm model for seconds, and every builder's
    layers already run and reload on JAX in test_models (conv_lstm on JAX end to end: `bash bench/gpu_check.sh`)."""
    tripwire = tmp_path / "tripwire"
    tripwire.mkdir()
    (tripwire / "sitecustomize.py").write_text(TENSORFLOW_TRIPWIRE)
    log = tmp_path / "tensorflow_imports.txt"
    run_dir = tmp_path / "run"
    tiny = [item for item in TINY if not item.startswith("search.")]
    stages = ["search.select.top_k=2", "search.select.folds=2", "search.select.backtest=always", "search.ensemble=2"]
    stages += ["search.intervals=[0.8]", "search.intervals_method=cqr", "search.workers=2", "hydra.run.dir=run"]
    env = {**cli_env(store), "PYTHONPATH": f"{tripwire}{os.pathsep}{ROOT}", "TF_TRIPWIRE_LOG": str(log)}
    result = subprocess.run(
        [sys.executable, "-m", "search", "+space=dnn", "backend=jax", *tiny, *SMALL_DNN, *stages],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert not log.exists(), log.read_text()[:3000]
    assert "Traceback" not in result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["backend"] == "jax" and summary["device"] == "cpu"
    assert "backend                  jax on CPU" in result.stdout
    assert summary["ensemble"] == 2 and summary["intervals"]["0.8"]["method"] == "cqr"

    client = MlflowClient(store, registry_uri=store)
    parent, children = parent_and_children(client, summary["mlflow_parent_run_id"])
    assert parent.data.tags["backend"] == "jax" and all(child.data.tags["backend"] == "jax" for child in children)
    assert {child.data.tags["worker"] for child in children} == {"w1", "w2"}

    # The registered model: jax pinned (not tensorflow), and it serves on TensorFlow through MLflow's pyfunc.
    uri = summary["model_uri"]
    code = (
        "import json, sys, mlflow, numpy as np\n"
        "from mlflow.pyfunc import get_model_dependencies\n"
        "requirements = open(get_model_dependencies(sys.argv[1])).read().split()\n"
        "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "x = np.asarray(json.loads(sys.argv[2]), dtype=np.float32)\n"
        "print(json.dumps({'requirements': requirements, 'forecast': np.asarray(model.predict(x)).ravel().tolist()}))"
    )
    length = summary["input_length"]
    window = np.linspace(0.0, 50.0, length, dtype=np.float32)[None, :]
    answers = {}
    for backend in ("jax", "tensorflow"):
        served = subprocess.run(
            [sys.executable, "-c", code, uri, json.dumps(window.tolist())],
            cwd=tmp_path,
            env={**cli_env(store), "MLFLOW_REGISTRY_URI": store, "KERAS_BACKEND": backend},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert served.returncode == 0, served.stderr[-3000:]
        answers[backend] = json.loads(served.stdout.strip().splitlines()[-1])
    requirements = answers["jax"]["requirements"]
    assert any(r.startswith("jax==") for r in requirements) and not any(r.startswith("tensorflow") for r in requirements)
    np.testing.assert_allclose(answers["tensorflow"]["forecast"], answers["jax"]["forecast"], rtol=1e-4, atol=1e-3)


@pytest.mark.slow
@needs_jax
def test_a_multirun_over_backends_runs_each_job_on_its_own(tmp_path, store):
    """Hydra's basic launcher runs the jobs in one process: the JAX job after a TensorFlow one gets a fresh interpreter."""
    result = run_cli(["-m", "+space=linear", "backend=tensorflow,jax", *TINY, "hydra.sweep.dir=sweep"], store, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = [json.loads((tmp_path / "sweep" / str(job) / "summary.json").read_text()) for job in (0, 1)]
    assert [s["backend"] for s in summaries] == ["tensorflow", "jax"]
    assert all("error" not in s and s["trials"]["completed"] > 0 for s in summaries)


def test_a_backend_whose_package_is_missing_names_the_extra_to_install(tmp_path):
    missing = next((b for b in ("torch", "jax") if not installed(b)), None)
    if missing is None:
        pytest.skip("every backend is installed here")
    result = run_cli(["+space=linear", f"backend={missing}", *TINY], None, tmp_path, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f'error: backend={missing}: the {missing} package is not installed here; install it with pip install -e ".[{missing}]"'
    )
    assert not (tmp_path / "mlflow.db").exists()  # stopped before the store was created


def test_an_unknown_backend_is_refused_at_composition(tmp_path):
    result = run_cli(["+space=linear", "backend=theano"], None, tmp_path, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "backend" in result.stderr and "theano" in result.stderr


def test_keras_backend_is_honoured_when_the_key_is_not_given(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    assert resolve(None) == "tensorflow"
    monkeypatch.delenv("KERAS_BACKEND")
    assert resolve(None) == "tensorflow"  # the default
    monkeypatch.setenv("KERAS_BACKEND", "mxnet")
    with pytest.raises(UserError, match="KERAS_BACKEND=mxnet is not a Keras backend"):
        resolve(None)
    assert resolve("tensorflow") == "tensorflow"  # the key wins over the variable


def test_auto_picks_the_backend_measured_fastest_that_is_installed():
    first = "jax" if installed("jax") else "tensorflow"
    assert auto() == resolve("auto") == first


WINDOW_CASES = [(300, 5, 7, 1, 1), (300, 5, 32, 50, 1), (3000, 20, 32, 1000, 3)]
"""(points, window_size, batch_size, shuffle_buffer, horizon): time order, a small buffer, a horizon and a long series."""

WINDOWS_CHILD = textwrap.dedent(
    """
    import json, sys, numpy as np
    from data.windows import windowed_dataset

    def epochs(points, window, batch, buffer, horizon, copies, seed, count):
        series = np.sin(np.arange(points, dtype=np.float32) / 7) * 10 + np.arange(points) / 10
        data = windowed_dataset(series, window, batch, buffer, label_start=window, seed=seed, horizon=horizon,
                                label_copies=copies)
        out = []
        for _ in range(count):
            if hasattr(data, "__getitem__"):  # a keras PyDataset, as fit reads it: by index, then on_epoch_end
                batches = [(np.asarray(x).tolist(), np.asarray(y).tolist()) for x, y in (data[i] for i in range(len(data)))]
                data.on_epoch_end()
            else:
                batches = [(x.numpy().tolist(), y.numpy().tolist()) for x, y in data]
            out.append(batches)
        return out

    cases = json.loads(sys.argv[1])
    print(json.dumps([
        {"plain": epochs(*case, 1, 3, 2), "again": epochs(*case, 1, 3, 1), "tiled": epochs(*case, 3, 3, 1)} for case in cases
    ]))
    """
)


@needs_jax
def test_jax_windows_are_the_tensorflow_windows():
    """Same batch count and sizes, same (window, label) pairs each epoch (in time order without a buffer), reshuffled
    between epochs, the same order for the same seed; quantile-head labels tiled as TensorFlow tiles them."""
    results = {}
    for backend in ("tensorflow", "jax"):
        run = subprocess.run(
            [sys.executable, "-c", WINDOWS_CHILD, json.dumps(WINDOW_CASES)],
            cwd=ROOT,
            env={**cli_env(None), "KERAS_BACKEND": backend},
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        results[backend] = json.loads(run.stdout)

    def pairs(batches):
        return sorted((tuple(x), tuple(np.ravel(y))) for xs, ys in batches for x, y in zip(xs, ys, strict=True))

    for (_, _, _, buffer, horizon), tf, jax in zip(WINDOW_CASES, results["tensorflow"], results["jax"], strict=True):
        for epoch in range(2):
            assert [len(b[0]) for b in jax["plain"][epoch]] == [len(b[0]) for b in tf["plain"][epoch]]
            assert pairs(jax["plain"][epoch]) == pairs(tf["plain"][epoch])
        if buffer > 1:
            assert jax["plain"][0] != jax["plain"][1]  # reshuffled each epoch
        else:
            assert jax["plain"][0] == tf["plain"][0]  # time order, exactly
        assert jax["again"][0] == jax["plain"][0]  # the seed fixes the order
        for (x_tiled, y_tiled), (x, y) in zip(jax["tiled"][0], jax["plain"][0], strict=True):
            assert x_tiled == x
            np.testing.assert_array_equal(np.asarray(y_tiled), np.tile(np.reshape(y, (-1, horizon)), (1, 3)))
        assert pairs(jax["tiled"][0]) == pairs(tf["tiled"][0])
