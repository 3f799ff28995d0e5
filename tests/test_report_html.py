"""report.html in a real headless browser (Playwright driving Debian's chromium by path).

The run is real: a replay model through the loop, the Go toolchain and the bench. The page
must load from disk with no console error and no request but its own file, sort its task
table, open a task onto its round diff, and keep a hostile answer's markup as text.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_bench_run import (
    COMPILE_NEG,
    GOOD_ADD,
    GOOD_SQ,
    WRONG_NEG,
    WRONG_NEG2,
    fence,
    make_suite,
)

from agent.bench.report_html import bench_plots, incomplete_note, plot_series, suite_name
from agent.bench.stats import Summary

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
# The README's picture (docs/report.png) is this test's screenshot when asked for:
# GUILD_AGENT_SCREENSHOT=docs/report.png pytest tests/test_report_html.py
SCREENSHOT_ENV = "GUILD_AGENT_SCREENSHOT"

# Markup in a model's answer: must stay text, and must never fetch anything.
HOSTILE = ('// </script><script>fetch("http://127.0.0.1:9/x")</script>'
           '<img src="http://127.0.0.1:9/y" onerror="console.error(1)">')
# Wrong in a way no one-token change fixes, so round 2 is the model's.
HOSTILE_ADD = fence(f"{HOSTILE}\nfunc Add(a, b int) int {{ return a * b }}")


def cli(*args: str, env: dict[str, str], umask: str = "022") -> subprocess.CompletedProcess:
    cmd = " ".join(f"'{a}'" for a in [sys.executable, "-m", "agent.cli", *args])
    return subprocess.run(["sh", "-c", f"umask {umask}; exec {cmd}"], capture_output=True,
                          text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("html")
    suite = make_suite(root, ["add", "neg", "square"])
    script = root / "script.yaml"
    script.write_text(yaml.safe_dump({"responses": [
        HOSTILE_ADD, GOOD_ADD, COMPILE_NEG, WRONG_NEG, WRONG_NEG2, GOOD_SQ]}))
    env = {**os.environ, "GUILD_AGENT_DATA": str(root / "data")}
    out = root / "run"
    res = cli("bench", str(suite), "--replay", str(script), "--modes", "single,repair",
              "--max-rounds", "3", "--out", str(out), "--no-warm", env=env, umask="027")
    assert res.returncode == 0, res.stderr
    return out


def test_report_html_is_written_beside_report_md_with_the_umask_mode(run):
    page = run / "report.html"
    assert page.is_file() and (run / "report.md").is_file()
    assert oct(page.stat().st_mode & 0o777) == oct(0o640)  # umask 027
    assert "report.html" in (run / "report.md").read_text()
    text = page.read_text()
    assert "http://" not in text.replace("http://127.0.0.1:9", "").replace(
        "http://www.w3.org/2000/svg", "")  # no CDN, no external asset
    assert "<script>fetch" not in text and "&lt;/script&gt;" in text


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.skip("no chromium (scripts/setup installs Debian's)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_page_loads_offline_sorts_filters_and_expands(run, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    problems, requests = [], []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    url = (run / "report.html").as_uri()
    page.goto(url)
    page.wait_for_load_state("load")

    def ids() -> list[str]:
        return page.eval_on_selector_all(
            "tr.task-row:not([hidden])", "rs => rs.map(r => r.dataset.task)")

    assert ids() == ["add", "neg", "square"]
    page.click("#task-table th:has-text('task')")  # ascending
    page.click("#task-table th:has-text('task')")  # descending
    assert ids() == ["square", "neg", "add"]
    page.click("#task-table th:has-text('completion tokens')")
    tokens = page.eval_on_selector_all(
        "tr.task-row td:nth-child(6)", "cs => cs.map(c => parseFloat(c.dataset.sort))")
    assert tokens == sorted(tokens) and len(set(tokens)) > 1

    add = page.locator("tr.task-row[data-task='add']")
    detail = page.locator(f"#{add.get_attribute('data-detail')}")
    assert detail.is_hidden()
    add.locator("button.expand").click()
    assert detail.is_visible()
    diff = detail.locator("pre.diff").nth(1).inner_text()  # round 2 against round 1
    assert "-func Add(a, b int) int { return a * b }" in diff
    assert "+func Add(a, b int) int { return a + b }" in diff
    # The hostile comment is shown as the text it is.
    assert HOSTILE in detail.locator("pre.diff").nth(0).inner_text()
    assert page.locator("img").count() == 0

    page.fill("#filter", "ne")
    assert ids() == ["neg"]
    page.fill("#filter", "")
    page.select_option("#show", "none")
    assert ids() == ["neg"]
    page.select_option("#show", "all")
    assert page.inner_text("#count") == "3 of 3 tasks"

    # The picture for the README: a task that never passed, its rounds open.
    add.locator("button.expand").click()
    assert detail.is_hidden()
    page.locator("tr.task-row[data-task='neg'] button.expand").click()
    shot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "report.png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert not problems, problems
    assert requests == [url], requests
    page.close()


# -- plots --------------------------------------------------------------------------------

def test_plot_series_single_on_top_and_raw_apart(run):
    s = Summary.model_validate_json((run / "summary.json").read_text())
    by_step, _ = plot_series(s)
    labels = [x.label for x in by_step]
    # Drawn last (on top of repair's round-1 marker), hollow, and nudged apart.
    assert labels[-2:] == ["single, as generated", "single, after deterministic fixes"]
    raw, fixed = by_step[-2:]
    assert raw.hollow and fixed.hollow and raw.dx < 0 < fixed.dx
    assert raw.points == [(1, s.modes["single"].raw_solved)]
    assert fixed.points == [(1, s.modes["single"].solved)]
    assert suite_name(s.suite) == "suite" and suite_name("/a/b/humaneval.jsonl") == "humaneval"


def test_svg_ticks_are_whole_tasks_and_incomplete_is_marked(run):
    data = json.loads((run / "summary.json").read_text())
    data["complete"], data["attempts_done"], data["attempts_planned"] = False, 4, 6
    data["tasks"] = 7  # planned more than finished
    s = Summary.model_validate(data)
    svg = bench_plots(s)[0]
    import re

    ticks = re.findall(r'text-anchor="end">([^<]+)</text>', svg)
    assert ticks and all(t.isdigit() for t in ticks), ticks
    assert "3 of 7 tasks finished" in svg and "/tmp" not in svg.split("</text>")[0]
    assert incomplete_note(s).startswith("incomplete: 4/6 attempts")
