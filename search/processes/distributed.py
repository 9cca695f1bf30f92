"""Keras Tuner's chief/worker mode, and how its workers find the chief's MLflow parent run.

The same command runs as chief or worker (`search.distributed.role`, or Keras Tuner's own
`KERASTUNER_TUNER_ID` / `KERASTUNER_ORACLE_IP` / `KERASTUNER_ORACLE_PORT`). The chief serves the
oracle over gRPC and owns the search's parent run: it evaluates and registers the winner when the
workers are done. Each worker trains the trials the oracle hands it and logs each one as a child
run of the chief's parent run, which it finds by the `oracle` tag the chief puts on it.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from data.errors import UserError

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from search.record.tracking import Tracker


@dataclass(frozen=True)
class Role:
    """This process's part in a distributed search."""

    kind: str  # "chief" or "worker" (`search.config.Role`)
    tuner_id: str  # Keras Tuner's id: "chief", or a worker's unique id
    oracle: str  # "ip:port" of the chief's oracle

    @property
    def is_worker(self) -> bool:
        return self.kind == "worker"


def role_of(distributed_cfg: DictConfig) -> Role | None:
    """The role from `search.distributed`, else from Keras Tuner's variables; None for a one-process search."""
    role = distributed_cfg.role
    if not distributed_cfg.worker_timeout_s > 0:
        raise UserError(f"search.distributed.worker_timeout_s={distributed_cfg.worker_timeout_s} must be > 0 (seconds)")
    if role is None:
        tuner_id = os.environ.get("KERASTUNER_TUNER_ID")
        if not tuner_id:
            return None
        ip, port = os.environ.get("KERASTUNER_ORACLE_IP"), os.environ.get("KERASTUNER_ORACLE_PORT")
        if not ip or not port:
            raise UserError(
                "KERASTUNER_TUNER_ID is set: set KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT too (the chief's address)"
            )
        return Role("chief" if tuner_id == "chief" else "worker", tuner_id, f"{ip}:{port}")
    if not 0 < distributed_cfg.oracle_port < 65536:
        raise UserError(f"search.distributed.oracle_port={distributed_cfg.oracle_port} is not a port number")
    tuner_id = "chief" if role == "chief" else distributed_cfg.worker_id or f"worker-{socket.gethostname()}-{os.getpid()}"
    if role == "worker" and tuner_id == "chief":
        raise UserError("search.distributed.worker_id='chief' is the chief's id: choose another")
    return Role(str(role), tuner_id, f"{distributed_cfg.oracle_ip}:{distributed_cfg.oracle_port}")


def apply(role: Role) -> None:
    """Tell Keras Tuner (which reads its variables when a tuner is built) what this process is."""
    ip, port = role.oracle.rsplit(":", 1)
    os.environ.update(KERASTUNER_TUNER_ID=role.tuner_id, KERASTUNER_ORACLE_IP=ip, KERASTUNER_ORACLE_PORT=port)


def find_chief_parent(tracker: Tracker, oracle: str, timeout_s: float, poll_s: float = 2.0) -> str:
    """The running parent run of the chief serving `oracle`, waiting up to `timeout_s` for the chief to start.

    A chief whose parent run ends while the worker waits (it failed, was interrupted, or its search
    is already done) will not come back by itself: the worker says so at once instead of waiting out
    the timeout. Runs that ended before the worker began waiting belong to earlier searches on the
    same address and are ignored (end times are the writers' clocks: machines should agree on time).
    """
    waiting_since_ms = int(time.time() * 1000)
    deadline = time.monotonic() + timeout_s
    chief = f"tags.oracle = '{oracle}' and tags.distributed = 'chief'"
    announced = False
    while True:
        running = tracker.latest_run(f"{chief} and attributes.status = 'RUNNING'", "start_time")
        if running:
            return running.run_id
        run = tracker.latest_run(f"{chief} and attributes.end_time >= {waiting_since_ms}", "end_time")
        if run:
            raise UserError(
                f"the chief for oracle {oracle} ended ({run.status}, MLflow run {run.run_id}) while this worker waited: "
                "see the chief's error, restart it, then start the workers again"
            )
        if time.monotonic() > deadline:
            raise UserError(
                f"no running chief for oracle {oracle} in this experiment after {timeout_s:g} s: start the chief first "
                "(search.distributed.role=chief, same command and tracking store) or raise search.distributed.attach_timeout_s"
            )
        if not announced:
            print(f"waiting up to {timeout_s:g} s for the chief's MLflow run (oracle {oracle})", flush=True)
            announced = True
        time.sleep(poll_s)
