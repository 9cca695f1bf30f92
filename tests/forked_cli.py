"""`python -m search ...` forked from a warm interpreter: the command's own code path, without its imports each time.

Every command a test started spent ~5 s importing TensorFlow, Keras, Keras Tuner, MLflow and pandas before it read its
first argument: half of a tiny search, and most of the suite's time (82 of its 147 processes imported TensorFlow).
A forkserver (multiprocessing's) imports them once per test worker (`tests.warm_imports`); each command is a fork of
it that runs `search` as `__main__`, as `python -m search` does, in a session of its own, with its own working
directory, environment, stdout and stderr pipes, signals and exit code. What a command starts (workers, fit
processes, a sweep's job on another backend) starts as a fresh interpreter, as always.

Commands that need a fresh interpreter themselves (Keras on another backend than TensorFlow, a `preexec_fn`) and the
tests about imports (nothing imports TensorFlow before the input is checked, a JAX search never imports it) run
`python` itself: `tests.conftest.start_cli` decides.
"""

from __future__ import annotations

import atexit
import io
import multiprocessing
import os
import runpy
import signal
import subprocess
import sys
import threading
import traceback
from multiprocessing.connection import Connection

# Started on the first command a test worker forks, with the libraries every search imports already imported.
_FORKSERVER = multiprocessing.get_context("forkserver")
_FORKSERVER.set_forkserver_preload(["tests.warm_imports"])


class ForkedCommand:
    """`python -m search *argv` (kind "module") or `python -c argv[0] *argv[1:]` (kind "code"), forked; with what the
    tests use of a `subprocess.Popen` (text pipes): pid, args, stdout, stderr, returncode, poll, wait, communicate,
    send_signal, terminate, kill."""

    def __init__(self, kind: str, argv: list[str], env: dict[str, str], cwd):
        self.args = argv
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        pipes = Connection(out_write, readable=False), Connection(err_write, readable=False)
        self._process = _FORKSERVER.Process(target=_run, args=(kind, argv, env, str(cwd), *pipes))
        self._process.start()
        for pipe in pipes:  # the child holds its own copies: end of file comes when it (and what it started) exits
            pipe.close()
        self.stdout = open(out_read, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed by communicate
        self.stderr = open(err_read, encoding="utf-8", errors="replace")  # noqa: SIM115
        self._output: dict[str, str] = {}
        self._readers: list[threading.Thread] = []

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode  # -N for a signal N, as subprocess says it

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Read both pipes to their end (side by side: neither fills while the other is read) and wait for the exit."""
        if not self._readers:
            for name, stream in (("stdout", self.stdout), ("stderr", self.stderr)):
                reader = threading.Thread(target=lambda n=name, s=stream: self._output.__setitem__(n, s.read()), daemon=True)
                reader.start()
                self._readers.append(reader)
        self.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
            if reader.is_alive():  # something the command started still holds its pipe
                raise subprocess.TimeoutExpired(self.args, timeout)
        self.stdout.close()
        self.stderr.close()
        return self._output["stdout"], self._output["stderr"]

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _run(kind: str, argv: list[str], env: dict[str, str], cwd: str, stdout: Connection, stderr: Connection) -> None:
    """In the forked child: the command, with `env` as its whole environment, in `cwd`, writing to the two pipes; then
    the interpreter's exit (non-daemon threads joined, atexit handlers run) with the command's exit code."""
    os.setsid()  # its own session and process group, as `start_new_session=True`: a test may kill the group
    os.dup2(stdout.fileno(), 1)
    os.dup2(stderr.fileno(), 2)
    stdout.close()
    stderr.close()
    # Unbuffered (PYTHONUNBUFFERED in the tests' environment): a progress line reaches the pipe as it is printed.
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True, write_through=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), errors="backslashreplace", write_through=True)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    code = 0
    try:
        if kind == "module":
            sys.path.insert(0, cwd)
            sys.argv = ["-m", *argv]  # run_module puts the module's path first, as `python -m` does
            runpy.run_module("search", run_name="__main__", alter_sys=True)
        else:
            sys.path.insert(0, "")
            sys.argv = ["-c", *argv[1:]]
            exec(compile(argv[0], "<string>", "exec"), {"__name__": "__main__"})  # noqa: S102 - what `python -c` does
    except SystemExit as exit_:
        code = _exit_code(exit_.code)
    except BaseException:  # noqa: BLE001 - what the interpreter does with an uncaught error
        traceback.print_exc()
        code = 1
    threading._shutdown()  # the interpreter's own exit: non-daemon threads first, then the atexit handlers
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _exit_code(code) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1
