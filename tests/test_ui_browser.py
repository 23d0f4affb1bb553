"""The live page in a real browser: headless Chromium (the system's, driven by Playwright) against
a real `evlog watch --ui` process. Skipped, saying why, only where no browser is installed.

EVLOG_UI_SCREENSHOT=path writes the page's screenshot there, and EVLOG_UI_REPO=path ingests that
repository too; docs/ui.png is made this way, with pallets/click's history:
  EVLOG_UI_REPO=/path/to/click EVLOG_UI_SCREENSHOT=docs/ui.png pytest tests/test_ui_browser.py"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evlog.ui.panels import PANELS

from .support import eventually
from .ui_support import Page, make_workspace, watch_with_page

CHROMIUM = os.environ.get("EVLOG_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
REQUIRED = bool(os.environ.get("EVLOG_REQUIRE_BROWSER"))  # CI: a missing browser is a failure
if not Path(CHROMIUM).exists():
    why = f"no Chromium at {CHROMIUM} (apt-get install chromium, or set EVLOG_CHROMIUM)"
    if REQUIRED:
        raise RuntimeError(why)
    pytest.skip(why, allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

# As the machine's own probe starts it: no sandbox as root, no calls home on a closed network.
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
    "--disable-background-networking", "--disable-component-update", "--disable-dev-shm-usage",
]  # fmt: skip


@pytest.fixture(scope="module")
def page_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Page, Path]]:
    db, inbox = make_workspace(tmp_path_factory.mktemp("browser"), os.environ.get("EVLOG_UI_REPO"))
    p = watch_with_page(db, inbox)
    try:
        yield p, inbox
    finally:
        p.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def tab(browser: Any, page_server: tuple[Page, Path]) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    requests: list[str] = []
    tab.on("request", lambda r: requests.append(r.url))
    tab.goto(page_server[0].url)
    tab.wait_for_selector("body[data-ready='1']", timeout=30_000)
    yield tab
    base = page_server[0].base
    assert all(u.startswith(base) for u in requests), [u for u in requests if base not in u]
    assert not errors, errors
    context.close()


def _produce(inbox: Path, n: int, every_s: float, stop: threading.Event) -> None:
    with (inbox / "browser-live.jsonl").open("a") as f:
        for i in range(n):
            if stop.is_set():
                return
            row = {"id": f"b{i}", "channel": "live", "author": f"p{i % 3}", "text": "hi"}
            f.write(json.dumps(row) + "\n")
            f.flush()
            time.sleep(every_s)


def wait_js(tab: Any, expression: str, timeout: float) -> None:
    """Poll `expression` in the page until it is true. Playwright's wait_for_function compiles
    its predicate with eval inside the page, which the page's own CSP (rightly) refuses;
    evaluate goes through the debugging protocol instead."""
    eventually(lambda: bool(tab.evaluate(expression)), timeout=timeout / 1000, every=0.1)


def _int(text: str) -> int:
    return int(text.replace(",", "")) if text.strip() not in ("", "–") else -1


@pytest.mark.slow
def test_the_pipeline_numbers_move_while_a_producer_appends(
    tab: Any, page_server: tuple[Page, Path]
) -> None:
    _, inbox = page_server
    wait_js(tab, "Number(document.body.dataset.points || 0) >= 1", timeout=20_000)
    head0 = _int(tab.inner_text("#stat-head"))
    stop = threading.Event()
    producer = threading.Thread(target=_produce, args=(inbox, 400, 0.01, stop))
    producer.start()
    try:
        seen_rates: list[int] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            seen_rates.append(_int(tab.inner_text("#stat-appended")))
            head = _int(tab.inner_text("#stat-head"))
            if head >= head0 + 400 and max(seen_rates) > 0:
                break
            tab.wait_for_timeout(250)
        assert _int(tab.inner_text("#stat-head")) >= head0 + 400
        assert max(seen_rates) > 0, seen_rates
    finally:
        stop.set()
        producer.join()
    # caught up: visible = head, and the latency table filled from live batches
    wait_js(
        tab,
        "document.querySelector('#stat-position').textContent"
        " === document.querySelector('#stat-head').textContent",
        timeout=30_000,
    )
    stages = tab.locator("#stages tbody tr")
    names = [stages.nth(i).inner_text().split()[0] for i in range(stages.count())]
    # `evlog watch` stamps when each line was written: the wait before the read shows too
    assert names == [
        "read_to_commit", "commit_to_visible", "read_to_visible",
        "written_to_read", "written_to_visible",
    ]  # fmt: skip
    assert tab.locator("#chart-rate canvas").count() == 1
    assert tab.locator("#chart-latency canvas").count() == 1
    assert "live.jsonl" in tab.inner_text("#sources")


@pytest.mark.slow
def test_every_analytics_panel_renders_with_data(tab: Any) -> None:
    for panel in PANELS:
        node = tab.locator(f"#panel-{panel.id}")
        node.wait_for(timeout=30_000)
        wait_js(
            tab,
            f"document.querySelector('#panel-{panel.id}').dataset.state === 'ready'",
            timeout=30_000,
        )
        assert int(node.get_attribute("data-rows")) > 0, panel.id
        drawn = {"line": "canvas", "bars": ".bars .bar", "heatmap": ".heat .cell"}[panel.chart]
        assert node.locator(drawn).count() > 0, panel.id
        node.locator("details summary").click()  # the SQL it runs, shown on request
        assert node.locator("details pre").inner_text() == panel.sql
        assert node.locator(f"a[href='/api/panels/{panel.id}.parquet']").count() == 1
    assert tab.locator("#panel-activity_by_hour_of_week .heat .cell").count() == 7 * 24
    assert "malformed JSON" in tab.inner_text("#deadletters")


@pytest.mark.slow
def test_the_sql_box_returns_rows_and_draws_a_line_for_a_time_series(tab: Any) -> None:
    tab.fill("#sql-text", "SELECT author, count(*) AS n FROM messages GROUP BY 1 ORDER BY n DESC")
    tab.click("#sql-run")
    tab.wait_for_selector("#sql-result[data-state='ready']", timeout=30_000)
    assert int(tab.get_attribute("#sql-result", "data-rows")) > 1
    assert tab.locator("#sql-result tbody tr").count() > 1
    assert tab.locator("#sql-chart canvas").count() == 0  # no time column: no chart
    tab.fill(
        "#sql-text",
        "SELECT day, sum(messages) AS messages FROM messages_per_day GROUP BY day ORDER BY day",
    )
    tab.click("#sql-run")
    tab.wait_for_selector("#sql-chart canvas", timeout=30_000)
    tab.fill("#sql-text", "SELECT * FROM read_text('/etc/hostname')")
    tab.click("#sql-run")
    tab.wait_for_selector("#sql-result[data-state='error']", timeout=30_000)
    assert "disabled" in tab.inner_text("#sql-result")


@pytest.mark.slow
def test_a_screenshot_of_the_whole_page(tab: Any, tmp_path: Path) -> None:
    wait_js(
        tab,
        "[...document.querySelectorAll('.panel')].every(p => p.dataset.state === 'ready')",
        timeout=30_000,
    )
    tab.fill(
        "#sql-text",
        "SELECT day, sum(messages) AS messages FROM messages_per_day GROUP BY day ORDER BY day",
    )
    tab.click("#sql-run")
    tab.wait_for_selector("#sql-chart canvas", timeout=30_000)
    out = Path(os.environ.get("EVLOG_UI_SCREENSHOT") or tmp_path / "ui.png")
    tab.screenshot(path=str(out), full_page=True)
    assert out.stat().st_size > 20_000


@pytest.mark.slow
def test_the_page_of_evlog_serve_shows_what_was_pushed_and_refused(
    browser: Any, tmp_path: Path
) -> None:
    """`evlog serve --ui`: the "pushed" tiles appear with the events taken in and the requests
    a check refused, by reason."""
    import re
    import signal
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    from .support import proc_env

    env = {**proc_env(), "EVLOG_SERVE_TOKEN": "browser-token"}
    argv = [sys.executable, "-m", "evlog", "--db", str(tmp_path / "e.db"), "serve",
            "--port", "0", "--ui", "0"]  # fmt: skip
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    lines: list[str] = []
    while not any(x.startswith("the live page: ") for x in lines) and proc.poll() is None:
        lines.append(proc.stderr.readline().strip())
    try:
        serving = next(x for x in lines if x.startswith("serving "))
        events_url = re.search(r"(http://[\d.:]+/v1/events)", serving)
        assert events_url is not None, serving
        page_url = next(x for x in lines if x.startswith("the live page: ")).split(": ", 1)[1]
        for token in ("browser-token", "wrong"):
            req = urllib.request.Request(
                events_url.group(1), data=b'{"id": 1}\n{"id": 2}',
                headers={"Authorization": f"Bearer {token}"},
            )  # fmt: skip
            try:
                urllib.request.urlopen(req, timeout=10).close()
            except urllib.error.HTTPError as exc:
                assert exc.code == 401
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        tab = context.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.goto(page_url)
        tab.wait_for_selector("body[data-ready='1']", timeout=30_000)
        wait_js(tab, "!document.querySelector('#push').hidden", 20_000)
        wait_js(tab, "document.querySelector('#push-appended').textContent === '2'", 20_000)
        assert tab.text_content("#push-refused") == "bad_token 1"
        assert not errors, errors
        context.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
