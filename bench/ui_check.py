"""What a person sees in `mlflow ui` after a search, checked in a real browser (headless Chromium).

    python -m bench.ui_check                      # a tiny search, then the checks; screenshots in docs/ui/
    python -m bench.ui_check --out /tmp/shots     # screenshots elsewhere

Needs Chromium and Playwright's Python package (not project dependencies):
`apt-get install -y chromium && pip install playwright` (Playwright drives the system's Chromium:
`executable_path=/usr/bin/chromium`, no browser download). Exits 77 when either is missing.

Runs a tiny search on a fresh sqlite store, starts the UI with the command the search printed
(`mlflow ui ... --port <free port>`) on 127.0.0.1, opens the URL the search printed and asserts:
the runs table (not the GenAI overview) lists the search's trials, with best_val_mae and the
searched hyperparameters as columns; the parent run's figures (`vs_baselines.png`,
`forecast_best.png`) render as images; the compare page of the trials shows its parallel
coordinates plot. Each step saves a screenshot.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.tiny import ROOT, SMALL_DNN, answers, search_env

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SEARCH = ["+space=dnn", "data.length=500", "data.test_size=60", "data.season_length=0", "tuner.factor=2", *SMALL_DNN]
SEARCH += ["tuner.max_epochs=4", "search.select.top_k=1", "search.refit=false"]
MISSING = 77  # the exit code of a check that cannot run here (as automake's SKIP)


def browser_missing() -> str | None:
    """Why the check cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "no Playwright for Python (pip install playwright)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_search(workdir: Path) -> dict:
    run_dir = workdir / "run"
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    command = [sys.executable, "-m", "search", *SEARCH, f"hydra.run.dir={run_dir}"]
    done = subprocess.run(command, cwd=workdir, env=search_env(uri), capture_output=True, text=True, timeout=900)
    if done.returncode:
        raise SystemExit(f"the search failed: {done.stderr[-2000:]}")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert "workflowType=machine_learning" in summary["ui_url"], summary["ui_url"]
    return summary


def start_ui(summary: dict, port: int, workdir: Path) -> subprocess.Popen:
    """The printed `mlflow ui` command, on a free port; waits until it answers."""
    words = summary["ui_command"].split()
    env = {**os.environ, **dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-"))}
    command = [w for w in words if not ("=" in w and not w.startswith("-"))]
    command = [sys.executable, "-m", *command[:1], *command[1:]]
    command[command.index("--port") + 1] = str(port)
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = subprocess.Popen(command, cwd=workdir, env=env, start_new_session=True, **quiet)
    if answers(port, 120):
        return server
    os.killpg(server.pid, signal.SIGKILL)
    raise SystemExit("mlflow ui did not start")


def searched_columns(summary: dict) -> list[str]:
    """The hyperparameters whose values differ among the search's trial runs: what the runs table must show as
    columns. A hyperparameter the space fixes takes one value and has no column."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(summary["ui_command"].split("--backend-store-uri ")[1].split()[0])
    parent = summary["mlflow_parent_run_id"]
    runs = client.search_runs([summary["mlflow_experiment_id"]], f"tags.mlflow.parentRunId = '{parent}'", max_results=500)
    trials = [run for run in runs if "trial_id" in run.data.tags]
    names = list(summary["best_hyperparameters"])
    return [name for name in names if len({run.data.params.get(name) for run in trials}) > 1]


def view_order(summary: dict) -> list[str]:
    """The column order of the runs-table view the search stored on its experiment (`Tracker.share_view`)."""
    from mlflow.tracking import MlflowClient

    from search.record.tracking import VIEW_KEY

    client = MlflowClient(summary["ui_command"].split("--backend-store-uri ")[1].split()[0])
    view = json.loads(client.get_experiment(summary["mlflow_experiment_id"]).tags[f"mlflow.sharedViewState.{VIEW_KEY}"])
    return [column.split("`")[1] for column in view["columnOrder"]]


def check_pages(summary: dict, port: int, out: Path) -> list[str]:
    """Open the printed URL and the parent's artifacts; returns what was seen (one line each)."""
    from playwright.sync_api import sync_playwright

    url = summary["ui_url"].replace(":5000/", f":{port}/")
    base = f"http://127.0.0.1:{port}"
    experiment, parent = summary["mlflow_experiment_id"], summary["mlflow_parent_run_id"]
    seen = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(
            viewport={"width": 3200, "height": 1000}
        )  # wide enough for every column (the grid draws only those in view)
        page.goto(url)
        page.get_by_text("trial-0000").first.wait_for(timeout=60000)
        close_assistant = page.get_by_role("button", name="Close")  # MLflow 3's assistant panel, open at first
        if close_assistant.count():
            close_assistant.first.click()
        cells = page.locator("[role='columnheader']")
        left = {}  # header text -> x on screen (the grid places its columns absolutely: the DOM order is not theirs)
        for index in range(cells.count()):
            text, box = cells.nth(index).inner_text().strip(), cells.nth(index).bounding_box()
            if text and box and text not in left:
                left[text] = box["x"]
        header = sorted(left, key=left.get)
        searched = searched_columns(summary)  # the hyperparameters the trials differ in, in the space's order
        for column in ("best_val_mae", "test_mae", *searched):
            assert column in header, f"no {column} column in {header}"
        in_view = [column for column in header if column in ("best_val_mae", *searched)]
        asked = [c for c in view_order(summary) if c in ("best_val_mae", *searched)]
        assert in_view == asked and asked[0] == "best_val_mae", (in_view, asked)  # the view the search set: the space's order
        trials = page.get_by_text("trial-0").count()
        shown = summary["trials"]["completed"] + summary["trials"]["failed"]  # a failed trial keeps its (FAILED) run
        assert trials == shown, (trials, summary["trials"])
        page.screenshot(path=str(out / "runs_table.png"))
        seen.append(f"runs table: {trials} trial rows and the parent, columns {', '.join(header)}")
        page.goto(f"{base}/#/experiments/{experiment}/runs/{parent}/artifacts/vs_baselines.png?workflowType=machine_learning")
        for figure in ("vs_baselines.png", "forecast_best.png"):
            previous = page.locator("img[src^='blob:']").first.get_attribute("src") if figure != "vs_baselines.png" else None
            page.get_by_text(figure, exact=True).first.click()  # in the artifact tree, as a person would
            image = page.locator(f"img[src^='blob:']:not([src='{previous}'])").first
            image.wait_for(timeout=60000)
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle(), timeout=30000)
            width = image.evaluate("img => img.naturalWidth")
            page.screenshot(path=str(out / figure.replace(".png", "_page.png")))
            seen.append(f"parent artifact {figure}: rendered, {width} px wide")
        page.goto(f"{base}/#/experiments/{experiment}/runs/{parent}?workflowType=machine_learning")
        page.get_by_text("search.workers").first.wait_for(timeout=30000)
        page.screenshot(path=str(out / "parent_run.png"))
        seen.append("parent run page: params include the search settings")
        from mlflow.tracking import MlflowClient

        client = MlflowClient(summary["ui_command"].split("--backend-store-uri ")[1].split()[0])
        children = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent}'", max_results=50)
        runs = json.dumps([c.info.run_id for c in children if "trial_id" in c.data.tags][:12])
        page.goto(f"{base}/#/compare-runs?runs={runs}&experiments={json.dumps([experiment])}&workflowType=machine_learning")
        page.locator(".js-plotly-plot").first.wait_for(timeout=60000)
        plotted = page.locator(".js-plotly-plot").first.inner_text()
        assert "best_val_mae" in plotted, plotted[:500]  # the score, not the training loss, is the plot's metric
        page.screenshot(path=str(out / "compare_runs.png"), full_page=True)
        seen.append("compare page: parallel coordinates plot of best_val_mae drawn")
        browser.close()
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "ui")
    args = parser.parse_args()
    missing = browser_missing()
    if missing:
        print(f"skipped: {missing}")
        sys.exit(MISSING)
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="ui-check-"))
    server = None
    try:
        summary = run_search(workdir)
        print(f"search done: {summary['trials']['completed']} trials; {summary['ui_command']}", flush=True)
        port = free_port()
        server = start_ui(summary, port, workdir)
        for line in check_pages(summary, port, args.out):
            print(line, flush=True)
        print(f"screenshots in {args.out}")
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(30)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
