"""The `mlm` command: thin typer commands over `mlm.Project`.

Heavy libraries (pymc, arviz, pandas) are imported only by the commands that need them,
so `mlm --help` and `mlm status` start fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlm.errors import MlmError

app = typer.Typer(
    name="mlm",
    help="Convention over configuration for Bayesian multilevel models on PyMC.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

SUMMARY_COLUMNS = ("mean", "sd", "eti89_lb", "eti89_ub", "ess_bulk", "ess_tail", "r_hat")
STATE_STYLE = {"fresh": "green", "stale": "yellow", "missing": "red"}


@contextmanager
def handled() -> Iterator[None]:
    """Turn failures into one clear message and a non-zero exit, never a bare traceback."""
    try:
        yield
    except MlmError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("[bold red]interrupted[/]: nothing half-written was kept")
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        if os.environ.get("MLM_DEBUG"):
            raise
        err.print(
            f"[bold red]mlm internal error:[/] {type(exc).__name__}: {escape(str(exc))}\n"
            "(set MLM_DEBUG=1 for the full traceback, and please report it)",
            highlight=False,
        )
        raise typer.Exit(2) from None


def _project(ctx: typer.Context, report: bool = False):
    from mlm.project import Project

    def show(stage: str, message: str) -> None:
        err.print(f"[bold cyan]{escape(stage):>10}[/] {escape(message)}", highlight=False)

    return Project(ctx.obj or Path.cwd(), report=show if report else None)


ModelsOption = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option("--model", "-m", help="Only this model variant (repeatable).", metavar="NAME"),
]
AllModelsOption = Annotated[
    bool, typer.Option("--all-models", help="Every model variant (the default).")
]

ProjectOption = Annotated[
    Optional[Path],  # noqa: UP045 (typer needs Optional on older releases)
    typer.Option("-C", "--project", help="Act on the project in PATH (default: walk up from here).",
                 metavar="PATH"),
]


@app.callback()
def options(ctx: typer.Context, project: ProjectOption = None) -> None:
    """mlm runs data.py -> model.py -> fit.py -> graphics.py, caching each result."""
    ctx.obj = project


@app.command()
def new(
    name: Annotated[str, typer.Argument(help="Folder name of the new project.")],
) -> None:
    """Create a new project NAME from the template (runs as it is: `cd NAME && mlm run`)."""
    from mlm.template import new_project

    with handled():
        path = new_project(name, Path.cwd())
        out.print(f"created [bold]{path}[/]")
        out.print(f"next: [bold]cd {name} && mlm run[/]  (samples the model, draws the figures)")


@app.command()
def run(
    ctx: typer.Context,
    stage: Annotated[
        str, typer.Argument(help="data, model, fit or graphics (graphics:NAME for one figure).")
    ] = "graphics",
    force: Annotated[bool, typer.Option("--force", "-f", help="Rerun STAGE even if fresh.")] = False,
    dry: Annotated[bool, typer.Option("--dry", help="Show what would run, run nothing.")] = False,
    model: ModelsOption = None,
    all_models: AllModelsOption = False,
) -> None:
    """Run STAGE (data, model, fit, graphics, compare) and every stale stage before it.

    Fresh results come from the cache. With several model variants, every variant is run
    (and, for graphics, compared) unless --model picks some.
    """
    os.environ.setdefault("MPLBACKEND", "Agg")
    models = None if all_models else model
    with handled():
        project = _project(ctx, report=not dry)
        if dry:
            plan = project.plan(stage, force=force, models=models)
            if not plan:
                out.print("nothing to run: everything is fresh")
            for row in plan:
                where = f" [{row.variant}]" if row.variant and not project.single_variant else ""
                out.print(f"would run {escape(row.stage + where)} ({escape(row.reason)})",
                          highlight=False)
            return
        results = project.run(stage, force=force, models=models)
        if stage == "compare":
            _print_comparison(project.comparison())
        if any(r.ran for r in results):
            out.print(f"[green]done[/]: {stage} is fresh")
        else:
            out.print(f"[green]nothing to do[/]: {stage} and everything before it are fresh")


@app.command()
def status(
    ctx: typer.Context,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print nothing; exit 1 if anything is not fresh.")
    ] = False,
) -> None:
    """Each stage and figure: fresh, stale (and which input changed) or missing."""
    with handled():
        project = _project(ctx)
        rows = project.status()
        if quiet:
            raise typer.Exit(0 if all(r.fresh for r in rows) else 1)
        several = not project.single_variant
        table = Table(title=None, show_edge=False, header_style="bold")
        if several:
            table.add_column("model")
        table.add_column("stage")
        table.add_column("state")
        table.add_column("reason", overflow="fold")
        for row in rows:
            style = STATE_STYLE.get(row.state, "")
            cells = [escape(row.stage), f"[{style}]{row.state}[/]", escape(row.reason)]
            table.add_row(*([row.variant or ""] if several else []), *cells)
        out.print(table)


@app.command()
def summary(
    ctx: typer.Context,
    model: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--model", "-m", help="The model variant (default: the first).",
                     metavar="NAME"),
    ] = None,
) -> None:
    """Posterior summary and diagnostics of the cached trace."""
    with handled():
        table_df, manifest, fresh = _project(ctx).summary(model)
        if not fresh:
            err.print("[yellow]warning:[/] the trace is stale; showing the latest one "
                      "(run `mlm run fit` to refresh it)")
        columns = [c for c in SUMMARY_COLUMNS if c in table_df.columns]
        table = Table(show_edge=False, header_style="bold")
        table.add_column("parameter", no_wrap=True)
        for column in columns:
            table.add_column(column, justify="right", no_wrap=True)
        for name, row in table_df.iterrows():
            table.add_row(escape(str(name)), *(_number(c, row[c]) for c in columns))
        out.print(table)
        diag = manifest.get("diagnostics", {})
        if diag:
            out.print(
                f"{diag.get('chains')} chains x {diag.get('draws')} draws, "
                f"{diag.get('divergences', 0)} divergences, max r_hat "
                f"{diag.get('max_r_hat', float('nan')):.3f}, min bulk ESS "
                f"{diag.get('min_ess_bulk', float('nan')):.0f}; sampled "
                f"{manifest.get('created_at')} in {manifest.get('wall_time_s')} s",
                highlight=False,
            )


@app.command()
def clean(
    ctx: typer.Context,
    keep: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--keep", min=0, help="Keep the newest N traces of each model."),
    ] = None,
) -> None:
    """Drop the cache (.mlm/), or with --keep N prune old traces."""
    with handled():
        removed = _project(ctx).clean(keep)
        what = "cache removed" if keep is None else f"kept the newest {keep} trace(s)"
        out.print(f"{what}; {removed} trace(s) deleted")


generate_app = typer.Typer(help="Write new project files to edit.", no_args_is_help=True)
app.add_typer(generate_app, name="generate")


@generate_app.command("model")
def generate_model(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Name of the new variant (models/NAME.py).")],
    source: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--from", help="The variant to copy (default: model.py).", metavar="OTHER"),
    ] = None,
) -> None:
    """Copy a model variant to models/NAME.py, to edit into a new one."""
    with handled():
        project = _project(ctx)
        path = project.new_variant(name, source)
        out.print(f"wrote {path.relative_to(project.root)}; edit it, then `mlm run` fits and "
                  "compares every variant")


@app.command()
def check(
    ctx: typer.Context,
    model: ModelsOption = None,
) -> None:
    """Gate on sampling diagnostics (thresholds from mlm.toml [check]); exit 1 on failure."""
    with handled():
        project = _project(ctx)
        rows = project.check(model)
        table = Table(show_edge=False, header_style="bold")
        for column in ("model", "check", "value", "threshold", "verdict", "where"):
            table.add_column(column, justify="right" if column in ("value", "threshold") else "left")
        for row in rows:
            verdict = "[green]pass[/]" if row.passed else "[bold red]FAIL[/]"
            table.add_row(row.variant, row.name, _number(row.name, row.value),
                          _number(row.name, row.threshold), verdict, escape(row.detail))
        out.print(table)
        failed = [r for r in rows if not r.passed]
        for row in failed:
            out.print(f"[bold red]{row.variant}: {row.name}[/]: {escape(row.advice)}")
        if failed:
            raise typer.Exit(1)
        out.print("[green]all checks passed[/]")


@app.command()
def report(
    ctx: typer.Context,
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--output", "-o", help="Where to write it (default: report.html)."),
    ] = None,
) -> None:
    """Write one self-contained HTML report: code, graph, summary, checks, comparison."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    with handled():
        from mlm.report import write_report

        project = _project(ctx, report=True)
        path = write_report(project, output)
        out.print(f"wrote [bold]{escape(str(path))}[/]")


def _print_comparison(record: dict) -> None:
    table = Table(show_edge=False, header_style="bold", title="PSIS-LOO comparison")
    columns = ("elpd", "se", "elpd_diff", "dse", "weight", "p")
    table.add_column("model")
    for column in columns:
        table.add_column("p_loo" if column == "p" else column, justify="right")
    for name in record["order"]:
        row = record["table"][name]
        table.add_row(escape(name), *(_number(c, row.get(c)) for c in columns))
    out.print(table)
    for warning in record.get("warnings", []):
        err.print(f"[yellow]warning:[/] {escape(warning['message'])}")


def _number(column: str, value) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if value != value:
        return "-"
    if column.startswith("ess") or column == "divergences":
        return f"{value:.0f}"
    if column in ("r_hat", "e_bfmi", "tree_depth", "weight"):
        return f"{value:.3f}"
    if column in ("elpd", "se", "elpd_diff", "dse", "p"):
        return f"{value:.1f}"
    return f"{value:.3g}"


def main() -> None:
    app(prog_name="mlm")


if __name__ == "__main__":
    sys.exit(main())
