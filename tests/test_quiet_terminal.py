"""A healthy run prints our lines only: no third-party start-up or registration chatter on the terminal."""

import os
import subprocess
import sys

import pytest

from search.core.quiet import TENSORFLOW_START_UP, filtered_fd2, stderr_without
from tests.conftest import TINY, cli_env


def test_the_fd2_filter_drops_known_start_up_lines_and_keeps_everything_else(capfd):
    with filtered_fd2(TENSORFLOW_START_UP):
        os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on. You may see...\n")
        os.write(2, b"error: libcudart.so cannot be opened\n")
        print("a Python warning", file=sys.stderr)
    assert sorted(capfd.readouterr().err.splitlines()) == ["a Python warning", "error: libcudart.so cannot be opened"]


def test_the_stderr_filter_passes_whole_lines_but_the_named_ones(capsys):
    with stderr_without(("Successfully registered model",)):
        sys.stderr.write("Successfully registered model 'x'.\nkept ")
        sys.stderr.write("line\nlast without newline")
    assert capsys.readouterr().err == "kept line\nlast without newline"


@pytest.mark.slow
def test_a_healthy_search_in_a_fresh_process_writes_only_our_lines(tmp_path, store):
    """In a fresh interpreter (TensorFlow imported for the first time): TensorFlow's C++ start-up lines and MLflow's
    registration lines would come first on stderr; only our `note:` lines may."""
    args = ["+space=linear", *TINY, "tuner.max_epochs=1", f"hydra.run.dir={tmp_path / 'run'}"]
    env = {k: v for k, v in cli_env(store).items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # a user's shell (importing
    # TensorFlow in this test process sets it to 1, which the command would respect)
    done = subprocess.run(
        [sys.executable, "-m", "search", *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("note:")] == []
    assert "registered" in done.stdout  # the closing table names the registered model instead


def test_a_ctrl_c_landing_in_a_finaliser_prints_no_exception_ignored_block(capsys, monkeypatch):
    """Python reports an exception raised in a finaliser (a `WeakKeyDictionary` callback, a `__del__`) as "Exception
    ignored in ...": for the interrupt the command already reports in its own line, that block is dropped; any other
    exception is still reported."""
    from search.core.quiet import quiet_known_noise

    monkeypatch.setattr(sys, "unraisablehook", sys.__unraisablehook__)  # Python's own, not pytest's collector
    monkeypatch.setattr(sys, "excepthook", sys.__excepthook__)
    quiet_known_noise()

    class Interrupted:
        def __del__(self):
            raise KeyboardInterrupt

    class Broken:
        def __del__(self):
            raise ValueError("a real bug")

    Interrupted()
    assert capsys.readouterr().err == ""
    Broken()
    assert "a real bug" in capsys.readouterr().err
