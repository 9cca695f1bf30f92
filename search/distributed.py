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

from data.errors import UserError

ROLES = ("chief", "worker")


@dataclass(frozen=True)
class Role:
    """This process's part in a distributed search."""

    kind: str  # "chief" or "worker"
    tuner_id: str  # Keras Tuner's id: "chief", or a worker's unique id
    oracle: str  # "ip:port" of the chief's oracle

    @property
    def is_worker(self) -> bool:
        return self.kind == "worker"


def role_of(distributed_cfg) -> Role | None:
    """The role from `search.distributed`, else from Keras Tuner's variables; None for a one-process search."""
    role = distributed_cfg.role
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
    if role not in ROLES:
        raise UserError(f"search.distributed.role={role!r} is unknown: use chief, worker, or null for one process")
    if not 0 < distributed_cfg.oracle_port < 65536:
        raise UserError(f"search.distributed.oracle_port={distributed_cfg.oracle_port} is not a port number")
    tuner_id = "chief" if role == "chief" else distributed_cfg.worker_id or f"worker-{socket.gethostname()}-{os.getpid()}"
    if role == "worker" and tuner_id == "chief":
        raise UserError("search.distributed.worker_id='chief' is the chief's id: choose another")
    return Role(role, tuner_id, f"{distributed_cfg.oracle_ip}:{distributed_cfg.oracle_port}")


def apply(role: Role) -> None:
    """Tell Keras Tuner (which reads its variables when a tuner is built) what this process is."""
    ip, port = role.oracle.rsplit(":", 1)
    os.environ.update(KERASTUNER_TUNER_ID=role.tuner_id, KERASTUNER_ORACLE_IP=ip, KERASTUNER_ORACLE_PORT=port)


def find_chief_parent(client, experiment_id: str, oracle: str, timeout_s: float, poll_s: float = 2.0) -> str:
    """The running parent run of the chief serving `oracle`, waiting up to `timeout_s` for the chief to start."""
    deadline = time.monotonic() + timeout_s
    while True:
        runs = client.search_runs(
            [experiment_id],
            filter_string=f"tags.oracle = '{oracle}' and tags.distributed = 'chief' and attributes.status = 'RUNNING'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if runs:
            return runs[0].info.run_id
        if time.monotonic() > deadline:
            raise UserError(
                f"no running chief for oracle {oracle} in this experiment after {timeout_s:g} s: start the chief first "
                "(search.distributed.role=chief, same command and tracking store) or raise search.distributed.attach_timeout_s"
            )
        time.sleep(poll_s)
