"""The chief's oracle behind a shared token, and behind TLS where the user gives a certificate.

Keras Tuner serves its oracle over plain gRPC: whoever reaches the port can read the search space, take trials,
report made-up scores (which pick the winner) or end trials. Every call to our chief's oracle (the local workers'
server of `search.workers`, the distributed chief's) must carry the search's token in its metadata; a call without
it, or with another, is refused (`UNAUTHENTICATED`) before the oracle sees it, and its caller is reported once per
address on stderr (the address and the method, never a token).

- `SEARCH_ORACLE_TOKEN`: the token. The local workers get one generated per search, through their environment. A
  distributed chief and its workers must be given the same one (the command refuses to start without it).
- `SEARCH_ORACLE_TLS_CERT` / `SEARCH_ORACLE_TLS_KEY` (the chief): PEM files of its certificate chain and key; the
  oracle then listens with TLS only. `SEARCH_ORACLE_TLS_CA` (the workers): the PEM file of the certificate (or its
  CA) to trust; without it a worker's channel is plain. The token alone guards the calls; TLS keeps it, and the
  trials, from being read on the wire.
"""

from __future__ import annotations

import collections
import hmac
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from data.errors import UserError

if TYPE_CHECKING:
    from google.protobuf.message import Message
    from keras_tuner import Oracle
    from keras_tuner.engine.trial import Trial
    from keras_tuner.src.distribute.oracle_client import OracleClient

TOKEN_ENV = "SEARCH_ORACLE_TOKEN"
TLS_CERT_ENV = "SEARCH_ORACLE_TLS_CERT"
TLS_KEY_ENV = "SEARCH_ORACLE_TLS_KEY"
TLS_CA_ENV = "SEARCH_ORACLE_TLS_CA"
METADATA_KEY = "x-search-oracle-token"
WORKER_KEY = "x-search-worker-id"  # who calls: every call is a sign of life (`serve_until_done`)


def new_token() -> str:
    """A fresh token for one search's local workers."""
    return secrets.token_urlsafe(32)


def required_token(role: str) -> str:
    """The token a distributed `role` (chief or worker) runs with, from `SEARCH_ORACLE_TOKEN`; a `UserError` without."""
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        raise UserError(
            f"search.distributed.role={role}: set {TOKEN_ENV} to one secret shared by the chief and every worker (e.g. "
            f"export {TOKEN_ENV}=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')): the oracle refuses "
            "calls without it"
        )
    return token


class TokenCheck(grpc.ServerInterceptor):
    """Passes a call on to the oracle only if its metadata holds the token; refuses it otherwise, reporting each
    refused address once."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()
        self._reported: set[str] = set()
        self._lock = threading.Lock()
        self.refused = 0
        self.last_seen: dict[str, float] = {}  # worker id -> monotonic time of its last call
        self.evicted: set[str] = set()  # workers presumed dead: their trials went to others

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        metadata = dict(handler_call_details.invocation_metadata or ())
        given, worker = metadata.get(METADATA_KEY, ""), str(metadata.get(WORKER_KEY, ""))
        method = handler_call_details.method.rsplit("/", 1)[-1]
        if hmac.compare_digest(str(given).encode(), self._token):
            with self._lock:
                if worker in self.evicted and method != "CreateTrial":  # a fresh start (same id) asks for a trial
                    return grpc.unary_unary_rpc_method_handler(_evicted)
                self.evicted.discard(worker)
                if worker:
                    self.last_seen[worker] = time.monotonic()
            return continuation(handler_call_details)

        def refuse(request: Message, context: grpc.ServicerContext) -> None:
            self._report(context.peer(), method)
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "this oracle needs its search's token")

        return grpc.unary_unary_rpc_method_handler(refuse)  # every oracle method is unary

    def evict_if_silent(self, worker: str, timeout_s: float, since: float) -> bool:
        """Evict `worker` if nothing came from it for `timeout_s` (counting from `since` if it never called); atomic
        with the calls' stamps, so a worker heard from meanwhile is kept."""
        with self._lock:
            if time.monotonic() - self.last_seen.get(worker, since) <= timeout_s:
                return False
            self.evicted.add(worker)
            return True

    def _report(self, peer: str, method: str) -> None:
        address = peer.rsplit(":", 1)[0]  # "ipv4:10.0.0.7:51234": the port changes with each connection
        with self._lock:
            self.refused += 1
            if address in self._reported:
                return
            self._reported.add(address)
        warning = f"warning: the oracle refused a call without the search's token from {address} ({method})"
        print(warning, file=sys.stderr, flush=True)


def _evicted(request: Message, context: grpc.ServicerContext) -> None:
    context.abort(
        grpc.StatusCode.FAILED_PRECONDITION,
        "the chief gave this worker's trial to another after it sent nothing for search.distributed.worker_timeout_s: "
        "start it again (a new worker id)",
    )


def serve_oracle(oracle: Oracle, address: str, token: str, tls: bool = True) -> tuple[grpc.Server, object, int]:
    """Keras Tuner's oracle service for `oracle` on `address` ("ip:port"; port 0 picks one), behind `TokenCheck` and,
    with `tls` and `SEARCH_ORACLE_TLS_CERT` and `..._KEY` set, TLS. Returns the started server, its servicer and the
    port."""
    from concurrent import futures

    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    check = TokenCheck(token)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1), interceptors=[check], options=[("grpc.so_reuseport", 0)])
    servicer = OracleServicer(oracle)
    servicer.token_check = check
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    credentials = _server_credentials() if tls else None
    try:
        port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    except RuntimeError:  # grpcio: "Failed to bind"
        port = 0
    if not port:
        raise UserError(f"the oracle could not listen on {address}: is the port in use? choose another oracle_port")
    server.start()
    return server, servicer, port


def serve_until_done(
    oracle: Oracle,
    address: str,
    token: str,
    worker_timeout_s: float,
    on_reclaimed: Callable[[str, Trial | None], None],
    stop_early: Callable[[Oracle], bool],
    poll_s: float = 1.0,
    max_reclaims_per_trial: int = 2,
) -> bool:
    """A distributed chief's oracle loop (Keras Tuner's `oracle_chief.start_server`, guarded): serve until the oracle
    has no trial left to hand out and every worker has said goodbye.

    A worker that sends nothing (its heartbeat included: `guard_client`) for `worker_timeout_s` is presumed dead: its
    trial goes back to the oracle for the next worker that asks (`reclaim`), `on_reclaimed(worker_id, trial)` is
    called, and its later calls are refused. Keras Tuner would wait for it for ever: a worker restarted after a crash
    has a new id (host and pid) and is never handed the trial the dead one held. A trial whose workers went silent
    more than `max_reclaims_per_trial` times (one that kills every worker it lands on: out of memory, a crash in
    native code) is ended FAILED instead of handed on again, so it cannot stall the search for ever.

    Returns False when `stop_early(oracle)` said to stop (too many failed trials in a row), True when done."""
    from keras_tuner.src.distribute.oracle_chief import exit_chief

    shared_across_threads(oracle)  # the gRPC thread's failure must not leave the oracle's lock held
    server, servicer, _ = serve_oracle(oracle, address, token)
    check, started = servicer.token_check, time.monotonic()
    reclaims: collections.Counter[str] = collections.Counter()  # trial id -> times its worker went silent
    try:
        while not (servicer.stop_triggered and exit_chief(oracle)):
            time.sleep(poll_s)
            if stop_early(oracle):
                return False
            silent = [w for w in list(oracle.tuner_ids) if check.evict_if_silent(w, worker_timeout_s, started)]
            reclaimed = [(worker, reclaim(oracle, worker, reclaims, max_reclaims_per_trial)) for worker in silent]
            for worker, trial in reclaimed:
                on_reclaimed(worker, trial)
        return True
    finally:
        server.stop(grace=5).wait()


def reclaim(
    oracle: Oracle, worker_id: str, reclaims: collections.Counter[str] | None = None, max_reclaims_per_trial: int = 2
) -> Trial | None:
    """Take `worker_id` off the oracle's workers and put the trial it held (returned; None if none) at the head of
    the oracle's retry queue, which Keras Tuner serves before drawing new trials. Under the oracle's lock.

    `reclaims` counts, per trial id, the workers that went silent on it; past `max_reclaims_per_trial` the trial is
    ended FAILED instead (its `message` says why), as a trial that raised would be: the search goes on without it,
    and `tuner.max_consecutive_failed_trials` counts it."""
    from keras_tuner.src.engine.oracle import synchronized

    reclaims = collections.Counter() if reclaims is None else reclaims

    @synchronized
    def take_back(oracle: Oracle) -> tuple[Trial | None, bool]:
        oracle.tuner_ids.discard(worker_id)
        trial = oracle.ongoing_trials.get(worker_id)
        if trial is None:
            return None, False
        reclaims[trial.trial_id] += 1
        if reclaims[trial.trial_id] > max_reclaims_per_trial:
            return trial, True  # ended below, outside this lock: `end_trial` takes it itself
        del oracle.ongoing_trials[worker_id]
        oracle._retry_queue.append(trial.trial_id)
        oracle.save()
        return trial, False

    @synchronized
    def drop(oracle: Oracle, trial: Trial) -> None:
        oracle.ongoing_trials.pop(worker_id, None)
        oracle._save_trial(trial)
        oracle.save()

    trial, give_up = take_back(oracle)
    if give_up:
        trial.status = "FAILED"
        trial.message = (
            f"{reclaims[trial.trial_id]} workers went silent on this trial "
            f"(search.distributed.max_reclaims_per_trial={max_reclaims_per_trial})"
        )
        try:
            oracle.end_trial(trial)
        except RuntimeError:  # too many failed trials in a row: the chief's loop stops the search (`stop_early`)
            drop(oracle, trial)  # (Keras Tuner raised before it saved the trial and let go of it)
    return trial


class _CallDetails(
    collections.namedtuple("_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")),
    grpc.ClientCallDetails,
):
    pass


class _WithToken(grpc.UnaryUnaryClientInterceptor):
    def __init__(self, token: str, worker_id: str | None) -> None:
        self._token, self._worker_id = token, worker_id

    def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Message], grpc.Future],
        client_call_details: grpc.ClientCallDetails,
        request: Message,
    ) -> grpc.Future:  # a `grpc.Call` too
        details = client_call_details
        metadata = [*(details.metadata or ()), (METADATA_KEY, self._token)]
        if self._worker_id:
            metadata.append((WORKER_KEY, self._worker_id))
        with_token = _CallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )
        return continuation(with_token, request)


def oracle_channel(address: str, token: str, worker_id: str | None = None) -> grpc.Channel:
    """A channel to the oracle on `address` whose every call carries `token` (and `worker_id`); TLS with
    `SEARCH_ORACLE_TLS_CA` set."""
    ca = os.environ.get(TLS_CA_ENV)
    options = [("grpc.initial_reconnect_backoff_ms", 1000), ("grpc.max_reconnect_backoff_ms", 5000)]  # after a blip
    if ca:
        credentials = grpc.ssl_channel_credentials(root_certificates=_read(TLS_CA_ENV, ca))
        channel = grpc.secure_channel(address, credentials, options=options)
    else:
        channel = grpc.insecure_channel(address, options=options)
    return grpc.intercept_channel(channel, _WithToken(token, worker_id))


def guard_client(oracle_client: OracleClient, address: str, token: str, worker_id: str, heartbeat_s: float | None = None) -> None:
    """Point Keras Tuner's `OracleClient` (a worker's oracle) at `oracle_channel`: its calls then carry the token and
    the worker's id. With `heartbeat_s`, a daemon thread also asks for the space every `heartbeat_s` seconds, so the
    chief hears from a worker deep in a long epoch; when the process dies, it stops."""
    from keras_tuner.src import protos

    stub = protos.get_service_grpc().OracleStub(oracle_channel(address, token, worker_id))
    oracle_client.stub = stub
    if heartbeat_s:
        request = protos.get_service().GetSpaceRequest()

        def beat() -> None:
            while True:
                time.sleep(heartbeat_s)
                try:
                    stub.GetSpace(request, timeout=heartbeat_s)
                except grpc.RpcError as err:
                    if err.code() == grpc.StatusCode.FAILED_PRECONDITION:  # presumed dead: its trial is another's
                        print(f"error: {err.details()}", file=sys.stderr, flush=True)
                        os._exit(3)  # its run was closed KILLED by the chief; training on would write twice
                    # otherwise the chief is gone or busy: the worker's own calls say so

        threading.Thread(target=beat, name="oracle-heartbeat", daemon=True).start()


def _server_credentials() -> grpc.ServerCredentials | None:
    cert, key = os.environ.get(TLS_CERT_ENV), os.environ.get(TLS_KEY_ENV)
    if not cert and not key:
        return None
    if not (cert and key):
        raise UserError(f"set both {TLS_CERT_ENV} and {TLS_KEY_ENV} (PEM files) for the oracle's TLS, or neither")
    return grpc.ssl_server_credentials([(_read(TLS_KEY_ENV, key), _read(TLS_CERT_ENV, cert))])


def _read(variable: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise UserError(f"{variable}={path}: cannot be read ({err.strerror})") from None


def shared_across_threads(oracle: Oracle) -> None:
    """Make `oracle` safe for two threads: Keras Tuner's `synchronized` lock is left held when the method it guards
    raises (the consecutive-failures `RuntimeError` of `end_trial`), which would block the other thread for good;
    and `get_best_trials` iterates the trials unguarded while the other thread may add one."""
    import keras_tuner
    from keras_tuner.src.engine import oracle as oracle_module

    def releasing(method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except BaseException:
                if oracle_module.THREADS[oracle] == threading.current_thread().name:  # raised inside the lock
                    oracle_module.THREADS[oracle] = None
                    oracle_module.LOCKS[oracle].release()
                raise

        return call

    oracle.get_best_trials = keras_tuner.synchronized(type(oracle).get_best_trials).__get__(oracle)
    for name in ("create_trial", "update_trial", "end_trial", "get_best_trials"):
        setattr(oracle, name, releasing(getattr(oracle, name)))
