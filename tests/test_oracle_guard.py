"""The chief's oracle refuses every call without the search's token: nobody else reads or steers the search."""

import collections

import grpc
import keras_tuner
import pytest
from keras_tuner.src import protos

from search.processes.oracle_guard import oracle_channel, reclaim, serve_oracle, shared_across_threads


def _oracle(folder):
    """A real Keras Tuner oracle with a one-parameter space."""
    oracle = keras_tuner.oracles.RandomSearchOracle(objective=keras_tuner.Objective("val_mae", "min"), max_trials=5, seed=1)
    oracle._set_project_dir(str(folder), "oracle")
    space = keras_tuner.HyperParameters()
    space.Int("units", 1, 64)
    oracle.update_space(space)
    return oracle


@pytest.fixture
def served_oracle(tmp_path):
    """`_oracle` served behind the token "right" on 127.0.0.1."""
    oracle = _oracle(tmp_path)
    server, _, port = serve_oracle(oracle, "127.0.0.1:0", "right", tls=False)
    yield oracle, f"127.0.0.1:{port}"
    server.stop(grace=None).wait()


def _stub(channel):
    return protos.get_service_grpc().OracleStub(channel)


def test_callers_without_the_token_or_with_another_get_nothing_and_change_nothing(served_oracle, capfd):
    oracle, address = served_oracle
    service = protos.get_service()
    owner = _stub(oracle_channel(address, "right"))
    trial = owner.CreateTrial(service.CreateTrialRequest(tuner_id="worker1")).trial  # the search's own worker
    before = (set(oracle.trials), set(oracle.tuner_ids), dict(oracle.trials[trial.trial_id].metrics.metrics))

    for intruder in (_stub(grpc.insecure_channel(address)), _stub(oracle_channel(address, "wrong"))):
        calls = [
            lambda s: s.GetSpace(service.GetSpaceRequest()),  # read the space
            lambda s: s.CreateTrial(service.CreateTrialRequest(tuner_id="intruder")),  # take a trial
            lambda s: s.UpdateTrial(service.UpdateTrialRequest(trial_id=trial.trial_id, metrics={"val_mae": 0.0})),
            lambda s: s.EndTrial(service.EndTrialRequest(trial=trial)),  # end another's trial
            lambda s: s.GetBestTrials(service.GetBestTrialsRequest(num_trials=1)),
        ]
        for call in calls:
            with pytest.raises(grpc.RpcError) as refused:
                call(intruder)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

    assert (set(oracle.trials), set(oracle.tuner_ids), dict(oracle.trials[trial.trial_id].metrics.metrics)) == before
    assert oracle.trials[trial.trial_id].status == "RUNNING"
    assert owner.GetSpace(service.GetSpaceRequest()).hyperparameters  # the token's holder is served as before
    err = capfd.readouterr().err
    refusals = [line for line in err.splitlines() if "refused" in line]
    assert refusals == ["warning: the oracle refused a call without the search's token from ipv4:127.0.0.1 (GetSpace)"]
    assert "right" not in err and "wrong" not in err  # the tokens are never written out


def _self_signed(folder):
    """A certificate for 127.0.0.1 and its key (PEM files), as a user would make with openssl."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "oracle")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "oracle.pem", folder / "oracle.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_with_a_certificate_the_oracle_speaks_tls_only(tmp_path, monkeypatch):
    cert, key = _self_signed(tmp_path)
    monkeypatch.setenv("SEARCH_ORACLE_TLS_CERT", str(cert))
    monkeypatch.setenv("SEARCH_ORACLE_TLS_KEY", str(key))
    oracle = _oracle(tmp_path)
    server, _, port = serve_oracle(oracle, "127.0.0.1:0", "right")
    try:
        service, address = protos.get_service(), f"127.0.0.1:{port}"
        with pytest.raises(grpc.RpcError):  # a plain channel, token and all, gets no answer
            _stub(oracle_channel(address, "right")).GetSpace(service.GetSpaceRequest(), timeout=5)
        monkeypatch.setenv("SEARCH_ORACLE_TLS_CA", str(cert))  # the worker trusts the chief's certificate
        assert _stub(oracle_channel(address, "right")).GetSpace(service.GetSpaceRequest(), timeout=10).hyperparameters
    finally:
        server.stop(grace=None).wait()


def test_a_trial_that_outlives_too_many_workers_is_ended_failed_and_the_search_goes_on(tmp_path):
    """A silent worker's trial goes to the next worker that asks, at most `max_reclaims_per_trial` times: a trial that
    kills every worker it lands on (out of memory) then ends FAILED, and the next worker is handed a new trial."""
    oracle, reclaims = _oracle(tmp_path), collections.Counter()
    first = oracle.create_trial("w0")
    for silent, next_worker in (("w0", "w1"), ("w1", "w2")):  # twice handed on: the same trial
        assert reclaim(oracle, silent, reclaims, max_reclaims_per_trial=2).trial_id == first.trial_id
        assert oracle.create_trial(next_worker).trial_id == first.trial_id
    ended = reclaim(oracle, "w2", reclaims, max_reclaims_per_trial=2)
    assert ended.trial_id == first.trial_id and oracle.trials[first.trial_id].status == "FAILED"
    assert "3 workers went silent" in oracle.trials[first.trial_id].message
    assert first.trial_id in oracle.end_order and not oracle.ongoing_trials and not oracle._retry_queue
    assert oracle.create_trial("w3").trial_id != first.trial_id
    assert reclaim(oracle, "w9", reclaims) is None  # a worker that held nothing


def test_a_trial_ended_failed_by_reclaim_may_stop_the_search_and_leaves_the_oracle_usable(tmp_path):
    """Ending a reclaimed trial FAILED can hit `max_consecutive_failed_trials` (Keras Tuner raises in `end_trial`): the
    trial is still recorded FAILED, let go of, and the oracle's lock is free for the gRPC thread, as the chief's loop
    serves it (`shared_across_threads`)."""
    from keras_tuner.src.engine import oracle as oracle_module

    oracle = _oracle(tmp_path)
    oracle.max_consecutive_failed_trials = 1
    shared_across_threads(oracle)
    trial = oracle.create_trial("w0")
    ended = reclaim(oracle, "w0", collections.Counter(), max_reclaims_per_trial=0)
    assert ended.trial_id == trial.trial_id and oracle.trials[trial.trial_id].status == "FAILED"
    assert not oracle.ongoing_trials and not oracle_module.LOCKS[oracle].locked()
    assert oracle_module.THREADS[oracle] is None
