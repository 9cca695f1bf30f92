"""A search from Python (`search.api.run`): the command's search, its summary back as a dict, errors as exceptions."""

import json

from mlflow.tracking import MlflowClient

from tests.conftest import TINY, call_in_child


def search_from_python(run_dir: str, store: str) -> dict:
    """In a process of its own, as a notebook would: one good search, two bad ones, and what Ctrl-C does after."""
    import os
    import signal

    from search.api import SearchFailed, run

    os.environ["MLFLOW_TRACKING_URI"] = store
    summary = run("+space=linear", *TINY, "tuner.max_epochs=1", run_dir=run_dir)
    failures = []
    bad = (["+space=linear", *TINY, "data.test_size=5000"], ["+space=linear", "tuner.max_epoch=3"], ["seed=1"])
    for overrides in (*bad, ["+space=linear", "mode=lr_find"]):
        try:
            run(*overrides, run_dir=f"{run_dir}-bad-{len(failures)}")
            failures.append(None)
        except SearchFailed as failed:
            failures.append({"code": failed.code, "message": str(failed)})
    return {
        "summary": summary,
        "failures": failures,
        "ctrl_c_handler_is_pythons": signal.getsignal(signal.SIGINT) is signal.default_int_handler,
    }


def test_a_search_run_from_python_returns_its_summary_and_raises_on_bad_input(tmp_path, store):
    run_dir = tmp_path / "run"
    outcome, _ = call_in_child("tests.test_api", "search_from_python", str(run_dir), store)
    summary = outcome["summary"]
    assert summary == json.loads((run_dir / "summary.json").read_text())
    assert summary["test_mae"] is not None and summary["registered_model"] == "synthetic-linear"
    assert MlflowClient(store).get_run(summary["mlflow_parent_run_id"]).info.status == "FINISHED"
    too_long, unknown_key, no_space, lr_find = outcome["failures"]
    assert lr_find["code"] == 2 and "mode=lr_find" in lr_find["message"]
    assert too_long["code"] == 2 and "data.test_size" in too_long["message"]
    assert unknown_key["code"] == 2 and "tuner.max_epoch" in unknown_key["message"]
    assert no_space == {"code": 2, "message": "choose a search space: run('+space=<name>', ...), a file of conf/space/"}
    assert outcome["ctrl_c_handler_is_pythons"]  # the caller's Ctrl-C is left as it was
