"""`mlm report`: one self-contained HTML file of the whole analysis.

Everything is inlined (figures as data URIs, the model graph as SVG, no scripts, no
external styles), so the file opens anywhere without a network.
"""

from __future__ import annotations

import base64
import html
import platform
import shutil
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from mlm.store import atomic_write_bytes

if TYPE_CHECKING:
    from mlm.check import Check
    from mlm.stages import Session

LIBRARIES = ("mlm", "pymc", "pytensor", "arviz", "nutpie", "numpy", "pandas", "xarray")
MIME = {".png": "image/png", ".svg": "image/svg+xml"}

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3em; }
h2 { margin-top: 2em; border-bottom: 1px solid #eee; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
pre { background: #f6f8fa; padding: 1em; overflow-x: auto; font-size: 0.85em; }
img { max-width: 100%; display: block; margin: 1em 0; }
.pass { color: #1a7f37; font-weight: bold; }
.fail { color: #cf222e; font-weight: bold; }
.warning { background: #fff8c5; padding: .5em 1em; border-left: 4px solid #d4a72c; }
.graph svg { max-width: 100%; height: auto; }
figure { margin: 1.5em 0; }
figcaption { color: #555; font-size: 0.9em; }
"""


def write_report(session: Session, checks: list[Check], path: Path) -> Path:
    """Write the report of a project whose stages are fresh to `path`; returns it."""
    atomic_write_bytes(path, render(session, checks).encode("utf-8"))
    return path


def render(session: Session, checks: list[Check]) -> str:
    """The report's HTML for a project whose stages are fresh."""
    e = html.escape
    project = session.layout
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(project.name)}: mlm report</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{e(project.name)}</h1>",
        f"<p>mlm report written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC from "
        f"<code>{e(str(project.root))}</code>.</p>",
    ]
    verdict = all(c.passed for c in checks)
    parts.append(
        f'<p>Diagnostics: <span class="{"pass" if verdict else "fail"}">'
        f"{'all checks passed' if verdict else 'some checks failed'}</span>.</p>"
    )
    parts += _data_and_sampling_section(session)
    for variant in project.variants():
        mine = [c for c in checks if c.variant == variant]
        parts += _variant_section(session, variant, mine)
    if len(project.variants()) > 1:
        parts += _comparison_section(session)
    parts += _provenance_section(session)
    parts.append("</body></html>")
    return "\n".join(parts)


def _data_and_sampling_section(session: Session) -> list[str]:
    """data.py and fit.py as they are: which rows the model saw (a generated data.py may
    leave out rows with missing values) and how it was sampled."""
    e = html.escape
    root, store = session.layout.root, session.layout.store
    data = store.read(store.paths.data_record)
    rows = data.get("rows") if data else None
    parts = ["<h2>Data and sampling</h2>"]
    if rows is not None:
        parts.append(f"<p>data.py's load() returned {e(str(rows))} rows.</p>")
    for name in ("data.py", "fit.py"):
        if (root / name).is_file():
            source = (root / name).read_text(encoding="utf-8")
            parts += [f"<h3>{name}</h3>", f"<pre><code>{e(source)}</code></pre>"]
    return parts


def _variant_section(session: Session, variant: str, checks) -> list[str]:
    from mlm.summary import hidden_note, summary_of

    e = html.escape
    model_file = session.layout.model_file(variant)
    source = (session.layout.root / model_file).read_text(encoding="utf-8")
    # What `mlm summary` shows, in its order (mlm.summary decides for both).
    summary = summary_of(session.fit(variant).value())
    note = hidden_note(summary)
    parts = [
        f"<h2>Model: {e(variant)} <small>({e(model_file)})</small></h2>",
        "<h3>Code</h3>",
        f"<pre><code>{e(source)}</code></pre>",
        "<h3>Graph</h3>",
        _graph(session.model(variant).value()),
        "<h3>Posterior summary</h3>",
        _table(summary.drop(columns="role").reset_index(names="parameter"), digits=3),
        f"<p>{e(note).replace('--', 'mlm summary --')}</p>" if note else "",
        "<h3>Diagnostics</h3>",
        _checks_table(checks),
    ]
    parts += [
        f'<p class="warning">{e(c.variant)}: {e(c.name)}: {e(c.advice)}</p>'
        for c in checks
        if not c.passed
    ]
    parts.append("<h3>Figures</h3>")
    for figure in session.figures(variant):
        parts.append(_figure(figure.path(), figure.figure.name))
    return parts


def _comparison_section(session: Session) -> list[str]:
    import pandas as pd

    e = html.escape
    compare = session.compare(session.layout.variants())
    record = compare.value()
    rows = [{"model": name, **record["table"][name]} for name in record["order"]]
    frame = pd.DataFrame(rows).rename(columns={"p": "p_loo"})
    parts = ["<h2>Model comparison (PSIS-LOO)</h2>", _table(frame, digits=2)]
    parts += [f'<p class="warning">{e(w["message"])}</p>' for w in record.get("warnings", [])]
    parts.append(_figure(compare.path(), "LOO comparison"))
    return parts


def _provenance_section(session: Session) -> list[str]:
    e = html.escape
    project, store = session.layout, session.layout.store
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    data = store.read(store.paths.data_record)
    rows = [
        ("seed (mlm.toml)", str(project.seed)),
        ("data hash", data.key if data else "?"),
        ("data rows", str(data.get("rows", "?") if data else "?")),
    ]
    rows += [(f"{name} version", version) for name, version in versions.items()]
    for variant in project.variants():
        key = session.fit(variant).key()
        trace = store.trace_record(variant, key)
        rows.append((f"{variant}: trace key", key))
        rows.append((f"{variant}: sampled at", trace.made_at if trace else "?"))
        rows.append(
            (f"{variant}: fit wall time", f"{trace.get('wall_time_s', '?') if trace else '?'} s")
        )
        for name, value in sorted(trace.inputs.items() if trace else ()):
            if name.endswith(".py"):
                rows.append((f"{variant}: {name} fingerprint", value))
        for figure in session.figures(variant):
            record = store.read(store.paths.figure_record(variant, figure.figure.name))
            if record:
                rows.append(
                    (
                        f"{variant}: {figure.figure.name}() wall time",
                        f"{record.get('wall_time_s', '?')} s",
                    )
                )
    body = "".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in rows)
    return ["<h2>Provenance</h2>", f"<table><tr><th>what</th><th>value</th></tr>{body}</table>"]


def _graph(model) -> str:
    """The model graph as inline SVG when Graphviz is installed, else a plain table."""
    if shutil.which("dot"):
        try:
            import pymc as pm

            svg = pm.model_to_graphviz(model).pipe(format="svg").decode("utf-8")
            return f'<div class="graph">{svg[svg.find("<svg") :]}</div>'
        except Exception:
            pass
    return _graph_text(model)


def _graph_text(model) -> str:
    e = html.escape
    observed = {v.name for v in model.observed_RVs}
    free = {v.name for v in model.free_RVs}
    rows = []
    for name, var in model.named_vars.items():
        kind = (
            "observed"
            if name in observed
            else "free"
            if name in free
            else "data"
            if name in model.data_vars
            else "deterministic"
        )
        op = getattr(getattr(var, "owner", None), "op", None)
        what = type(op).__name__ if op is not None else "data"
        dims = ", ".join(model.named_vars_to_dims.get(name, ())) or "-"
        rows.append(
            f"<tr><td>{e(name)}</td><td>{kind}</td><td>{e(what)}</td><td>{e(dims)}</td></tr>"
        )
    return (
        "<p>(Graphviz is not installed: the model's variables as a table.)</p>"
        "<table><tr><th>variable</th><th>kind</th><th>op</th><th>dims</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _checks_table(checks) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(c.name)}</td><td>{c.value:.4g}</td><td>{c.threshold:.4g}</td>"
        f'<td class="{"pass" if c.passed else "fail"}">{"pass" if c.passed else "FAIL"}</td>'
        f"<td>{e(c.detail)}</td></tr>"
        for c in checks
    )
    return (
        "<table><tr><th>check</th><th>value</th><th>threshold</th><th>verdict</th>"
        f"<th>where</th></tr>{rows}</table>"
    )


def _table(frame, digits: int) -> str:
    return frame.to_html(
        index=False, border=0, float_format=lambda v: f"{v:.{digits}f}", na_rep="-", escape=True
    )


def _figure(path: Path, caption: str) -> str:
    e = html.escape
    mime = MIME.get(path.suffix)
    if mime is None or not path.is_file():
        return f"<p>{e(caption)}: see <code>{e(str(path))}</code></p>"
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{e(caption)}" src="data:{mime};base64,{encoded}">'
        f"<figcaption>{e(caption)}</figcaption></figure>"
    )
