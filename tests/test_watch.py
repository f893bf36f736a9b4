"""`mlm watch`: reruns what a save made stale and shows it on a page that refreshes itself,
driven in headless Chromium; the page serves the project's figures and status only."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlm.watch.loop import watched

from conftest import cache_snapshot

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EXTRA_FIGURE = '''

def extra(idata):
    """A figure added while mlm watch runs."""
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.hist(np.asarray(idata["posterior"]["slope"]).reshape(-1), bins=20)
    ax.set_title("extra")
    return fig
'''


class Watcher:
    """`mlm watch` running in a subprocess, its page's address and its output so far."""

    def __init__(self, root: Path):
        self.root = root
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mlm", "watch", "--port", "0"],
            cwd=root,
            env={**os.environ, "MPLBACKEND": "Agg", "COLUMNS": "200"},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.process.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert found, f"no address in {line!r}"
        self.url = found.group(0)
        self.port = int(found.group(1))

    def get(self, path: str, method: str = "GET", host: str | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Host": host} if host else {}
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        connection.close()
        return response.status, body

    def status(self) -> dict:
        return json.loads(self.get("/status.json")[1])

    def wait_for_run(self, runs: int = 1, timeout: float = 300) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            status = self.status()
            if status["runs"] >= runs and not status["running"]:
                return status
            time.sleep(0.3)
        raise AssertionError(f"no run ended within {timeout} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()


@pytest.fixture
def watcher(fitted_dir: Path):
    running = Watcher(fitted_dir)
    try:
        yield running
    finally:
        running.stop()


def test_only_project_code_data_and_settings_are_watched(tmp_path: Path):
    root = tmp_path.resolve()
    for path in ("graphics.py", "helpers.py", "models/wide.py", "data/scores.csv", "mlm.toml"):
        assert watched(root, str(root / path)), path
    for path in (
        "figures/coefficients.png",
        ".mlm/data.json",
        "__pycache__/model.cpython-312.pyc",
        "tests/test_model.py",
        "README.md",
        ".graphics.py.swp",
        "data/.scores.csv.swp",
    ):
        assert not watched(root, str(root / path)), path
    assert not watched(root, str(tmp_path.parent / "other.py"))


def test_the_page_serves_status_and_figures_and_nothing_else(watcher: Watcher):
    status = watcher.wait_for_run()
    assert status["error"] is None
    assert {f["path"] for f in status["figures"]} == {
        "coefficients.png",
        "posterior_predictive.png",
        "school_effects.png",
    }
    assert all(row["state"] == "fresh" for row in status["status"])
    code, body = watcher.get("/figures/coefficients.png")
    assert code == 200 and body.startswith(b"\x89PNG")
    code, page = watcher.get("/")
    assert code == 200 and b"mlm watch" in page
    for path in (
        "/figures/../mlm.toml",
        "/figures/%2e%2e/mlm.toml",
        "/figures/..%2fmlm.toml",
        "/../mlm.toml",
        "/mlm.toml",
        "/figures/../.mlm/data.json",
        "/data/scores.csv",
        "/figures//etc/passwd",
        "/figures/%2fetc%2fpasswd",
    ):
        code, body = watcher.get(path)
        assert code == 404, path
        assert b"seed" not in body and b"rows" not in body, path
    assert watcher.get("/status.json", method="POST")[0] == 405
    assert watcher.get("/status.json", host="evil.example:80")[0] == 403


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_the_page_follows_edits_in_headless_chromium(watcher: Watcher, fitted_dir: Path):
    from playwright.sync_api import sync_playwright

    watcher.wait_for_run()
    traces = {k: v for k, v in cache_snapshot(fitted_dir).items() if k.startswith("fit/")}
    graphics = fitted_dir / "graphics.py"
    model = fitted_dir / "model.py"
    original_model = model.read_text()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page = browser.new_page()
            page.goto(watcher.url)
            page.wait_for_function("document.querySelectorAll('#figures img').length === 3")
            assert page.locator("#status tbody tr").count() == 6
            assert not page.locator("#error").is_visible()

            # A new figure function: drawn by the watcher and shown without a reload.
            graphics.write_text(graphics.read_text() + EXTRA_FIGURE)
            page.wait_for_selector('img[alt="extra.png"]', timeout=120_000)
            page.wait_for_function(
                "document.querySelector('img[alt=\"extra.png\"]').naturalWidth > 0"
            )
            assert page.locator("text=graphics:extra").count() == 1
            # Only what became stale ran: the figure, from the cached trace.
            now = {k: v for k, v in cache_snapshot(fitted_dir).items() if k.startswith("fit/")}
            assert now == traces
            reloads = page.evaluate("performance.getEntriesByType('navigation').length")
            assert reloads == 1

            # A broken model: the page shows the message; the last good figures stay.
            model.write_text(
                original_model.replace(
                    "    coords = {", '    raise RuntimeError("broken on purpose")\n    coords = {'
                )
            )
            page.wait_for_selector("#error:has-text('broken on purpose')", timeout=120_000)
            assert "model.py" in page.locator("#error").inner_text()
            assert page.locator("#figures img").count() == 4
            for image in page.locator("#figures img").all():
                assert image.evaluate("img => img.complete && img.naturalWidth > 0")

            # Fixed again: the same trace is fresh (nothing resampled) and the error goes.
            model.write_text(original_model)
            page.wait_for_selector("#error", state="hidden", timeout=120_000)
        finally:
            browser.close()
    assert watcher.status()["error"] is None
