"""`mlm report`: a self-contained HTML file, opened in a real headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlm import Project
from mlm.report import _graph

from conftest import needs_tool, run_mlm

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def report_file(variants_dir: Path) -> Path:
    done = run_mlm("report", cwd=variants_dir)
    assert done.returncode == 0, done.stderr
    return variants_dir / "report.html"


def test_report_holds_code_graph_summary_checks_comparison_and_provenance(report_file: Path):
    page = report_file.read_text()
    for text in (
        "<h2>Model: model",
        "<h2>Model: wide",
        "models/wide.py",
        "Posterior summary",
        "Diagnostics",
        "Model comparison (PSIS-LOO)",
        "Provenance",
        "pymc version",
        "arviz version",
        "mlm version",
        "data hash",
        "trace key",
        "fit wall time",
        "model.py fingerprint",
        "sigma=50",
        # which rows the model saw and how it was sampled: data.py and fit.py as they are
        "<h2>Data and sampling</h2>",
        "<p>data.py's load() returned 120 rows.</p>",
        "<h3>data.py</h3>",
        "def load(",
        "<h3>fit.py</h3>",
        "def sample(model, project):",
    ):
        assert text in page, text
    # Self-contained: no scripts, no external stylesheets or images.
    assert "<script" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert page.count('src="data:image/png;base64,') == 7  # 3 figures x 2 models + comparison


def test_report_renders_in_headless_chromium_with_every_image_loaded(report_file: Path):
    from playwright.sync_api import sync_playwright

    chromium = needs_tool("chromium", "chromium-browser")  # Debian's chromium
    needs_tool("dot")  # graphviz draws each model's graph as SVG

    errors: list[str] = []
    outside: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on(
                "request",
                lambda r: (
                    outside.append(r.url) if not r.url.startswith(("data:", "file:")) else None
                ),
            )
            page.goto(report_file.as_uri(), wait_until="load")
            images = page.evaluate(
                "Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])"
            )
            headings = page.locator("h2").all_inner_texts()
            svg_graphs = page.locator(".graph svg").count()
            title = page.title()
        finally:
            browser.close()
    assert errors == []
    assert outside == []
    assert len(images) == 7
    assert all(complete and width > 0 for _, complete, width in images), images
    assert any(h.startswith("Model: wide") for h in headings)
    assert "Provenance" in headings
    assert title.endswith("mlm report")
    assert svg_graphs == 2


def test_model_graph_falls_back_to_a_table_without_graphviz(fitted_dir, monkeypatch):
    import mlm.report

    model = Project(fitted_dir).model
    monkeypatch.setattr(mlm.report.shutil, "which", lambda name: None)
    text = _graph(model)
    assert "Graphviz is not installed" in text
    assert "<td>school_effect</td><td>deterministic</td>" in text
    assert "<td>score</td><td>observed</td>" in text
