"""The `mlm` command: thin typer commands over `mlm.Project`.

Heavy libraries (pymc, arviz, pandas) are imported only by the commands that need them,
so `mlm --help` and `mlm status` start fast.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlm import interrupts
from mlm.errors import MlmError
from mlm.words import plural

app = typer.Typer(
    name="mlm",
    help="Convention over configuration for Bayesian multilevel models on PyMC.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped or redirected, a line is written whole (rich would cut it at 80 columns, inside
# a hash or a line of code); on a terminal it wraps at the terminal's width.
out = Console(soft_wrap=not sys.stdout.isatty())
err = Console(stderr=True, soft_wrap=not sys.stderr.isatty())

SUMMARY_COLUMNS = ("mean", "sd", "ess_bulk", "ess_tail", "r_hat")  # and the interval's eti*
STATE_STYLE = {"fresh": "green", "stale": "yellow", "missing": "red"}
# Exit statuses: 0 done, 1 a fault mlm explains (bad input, a failed check), 2 a command
# line click cannot parse (its usage error), 70 a bug in mlm (sysexits' EX_SOFTWARE),
# 130 interrupted.
EXIT_INTERNAL = 70


@contextmanager
def handled() -> Iterator[None]:
    """Turn failures into one clear message and a non-zero exit, never a bare traceback."""
    try:
        yield
    except MlmError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        interrupts.settle()
        _say_interrupted()
        raise typer.Exit(130) from None
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        err.print(
            f"[bold red]error:[/] {escape(where)}{escape(exc.strerror or str(exc))}",
            highlight=False,
        )
        raise typer.Exit(1) from None
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
        raise typer.Exit(EXIT_INTERNAL) from None


_interrupted_said = False


def _say_interrupted() -> None:
    global _interrupted_said
    if not _interrupted_said:
        _interrupted_said = True
        err.print(
            "[bold red]interrupted[/]: nothing half-written was kept; earlier results are intact"
        )


def _project(ctx: typer.Context, progress: bool = False):
    from mlm.project import Project

    def show(stage: str, message: str) -> None:
        err.print(f"[bold cyan]{escape(stage):>10}[/] {escape(message)}", highlight=False)

    project = Project(ctx.obj or Path.cwd(), progress=show if progress else None)
    for warning in project.config.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    return project


ModelOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--model", "-m", help="The model variant (default: the first).", metavar="NAME"),
]
ModelsOption = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option("--model", "-m", help="Only this model variant (repeatable).", metavar="NAME"),
]
AllModelsOption = Annotated[
    bool, typer.Option("--all-models", help="Every model variant (the default).")
]

ProjectOption = Annotated[
    Optional[Path],  # noqa: UP045 (typer needs Optional on older releases)
    typer.Option(
        "-C",
        "--project",
        help="Act on the project in PATH (default: walk up from here).",
        metavar="PATH",
    ),
]


def _show_version(value: bool) -> None:
    if value:
        from mlm.version import __version__

        out.print(f"mlm {__version__}", highlight=False)
        raise typer.Exit()


VersionOption = Annotated[
    bool,
    typer.Option(
        "--version",
        callback=_show_version,
        is_eager=True,
        help="Print mlm's version and exit.",
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print JSON for scripts (its shape: README, Scripts and CI)."),
]


@app.callback()
def options(
    ctx: typer.Context, project: ProjectOption = None, version: VersionOption = False
) -> None:
    """mlm runs data.py -> model.py -> fit.py -> graphics.py, caching each result."""
    ctx.obj = project


FormulaOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--formula",
        help="lme4 ('y ~ x + (1 | g)') or Stata ('mixed y x || g:') "
        "model; model.py is written from it.",
        metavar="F",
    ),
]
SigmaOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--sigma",
        help="One-sided formula for log(residual SD), e.g. '~ condition' (with a --prior on "
        "sigma: one residual SD per level of that column).",
        metavar="G",
    ),
]
FamilyOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--family",
        help="gaussian (default), student_t, bernoulli, binomial, poisson, negbinomial, "
        "gamma (log link), lognormal, beta (logit link), zero_inflated_poisson or "
        "zero_inflated_negbinomial.",
    ),
]
PriorOption = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option(
        "--prior",
        help="Replace one generated prior, e.g. 'b_tx=Normal(0, 100)', or put an SD's prior "
        "on its variance, 'sigma_group^2=Gamma(1, 1)'. NAME is a parameter of the model "
        "(Intercept, b_x, sigma_g, sigma, log_sigma_x, nu, theta, shape, phi, zi), Dist a PyMC "
        "distribution, the arguments numbers. Repeatable.",
        metavar="NAME=Dist(args)",
    ),
]


@app.command()
def new(
    name: Annotated[str, typer.Argument(help="Folder name of the new project.")],
    formula: FormulaOption = None,
    sigma: SigmaOption = None,
    family: FamilyOption = None,
    prior: PriorOption = None,
    data: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--data",
            help="A CSV to analyse (copied to data/; needs --formula).",
            metavar="FILE.csv",
        ),
    ] = None,
    drop_missing: Annotated[
        bool,
        typer.Option(
            "--drop-missing",
            help="Leave out rows with a missing value in the model's columns, as lme4 and "
            "Stata do (data.py says so; needs --data).",
        ),
    ] = False,
    no_git: Annotated[
        bool, typer.Option("--no-git", help="Do not initialise a git repository.")
    ] = False,
) -> None:
    """Create a new project NAME from the template (runs as it is: `cd NAME && mlm run`).

    With --formula, model.py (and graphics.py, tests/) are written from the
    formula, as plain PyMC to read and edit; with --data too, data.py reads
    that CSV. Each --prior replaces one default prior; model.py says so.

    The project is a new git repository (unless --no-git), with a CI workflow,
    .github/workflows/mlm.yml, that installs this mlm from where it came from and runs
    `mlm run`, `mlm check` and `pytest`.

    Files in ~/.config/mlm/templates/new/ replace (or add to) the new project's files
    of the same path.
    """
    from mlm.generators import init_git
    from mlm.requirement import installed_source
    from mlm.template import new_formula_project, new_project, project_overrides

    with handled():
        if formula is None:
            if sigma or family or data or prior or drop_missing:
                raise MlmError(
                    "--sigma, --family, --prior, --data and --drop-missing need --formula"
                )
            path = new_project(name, Path.cwd())
        else:
            if drop_missing and data is None:
                raise MlmError("--drop-missing needs --data: it is about that CSV's rows")
            path = new_formula_project(
                name,
                Path.cwd(),
                formula,
                sigma,
                family,
                data,
                priors=prior or (),
                drop_missing=drop_missing,
            )
            out.print(f"wrote [bold]{name}/model.py[/] from {escape(formula)}")
        out.print(f"created [bold]{path}[/]")
        folder, files = project_overrides(formula is not None, data is not None)
        if files:
            shown = escape(", ".join(files))
            out.print(
                f"from your templates ({escape(str(folder))}): {shown}",
                highlight=False,
                soft_wrap=True,
            )
        if installed_source().requirement is None:
            out.print(
                "todo: set MLM_REQUIREMENT in .github/workflows/mlm.yml to a pip requirement "
                f"CI can install mlm from (`mlm new` ran with {escape(installed_source().origin)})",
                highlight=False,
                soft_wrap=True,
            )
        if not no_git:
            out.print(init_git(path), highlight=False)
        out.print(f"next: [bold]cd {name} && mlm run[/]  (samples the model, draws the figures)")


@app.command()
def run(
    ctx: typer.Context,
    stage: Annotated[
        str,
        typer.Argument(
            help="data, model, fit, graphics or compare (graphics:NAME for one figure)."
        ),
    ] = "graphics",
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Rerun STAGE even if fresh.")
    ] = False,
    dry: Annotated[bool, typer.Option("--dry", help="Show what would run, run nothing.")] = False,
    model: ModelsOption = None,
    all_models: AllModelsOption = False,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Fail at once if another mlm is fitting.")
    ] = False,
    workers: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--workers",
            "-w",
            min=0,
            help="Fit the variants side by side in N local processes (default: in turn).",
            metavar="N",
        ),
    ] = None,
    scheduler: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--scheduler",
            metavar="ADDRESS",
            help="Fit the variants on a running Dask cluster (it must see this folder).",
        ),
    ] = None,
) -> None:
    """Run STAGE (data, model, fit, graphics, compare; simulate: see `mlm study`) and every
    stale stage before it.

    Fresh results come from the cache. With several model variants, every variant is run
    (and, for graphics, compared) unless --model picks some; --workers N or --scheduler
    fits them side by side.
    """
    os.environ.setdefault("MPLBACKEND", "Agg")
    models = None if all_models else model
    with handled():
        if workers is not None and scheduler is not None:
            raise MlmError(
                "--workers and --scheduler exclude each other: --workers starts local "
                "processes, --scheduler uses a running Dask cluster's"
            )
        project = _project(ctx, progress=not dry)
        if dry:
            plan = project.plan(stage, force=force, models=models)
            if not plan:
                out.print("nothing to run: everything is fresh")
            for row in plan:
                where = f" [{row.variant}]" if row.variant and not project.single_variant else ""
                out.print(
                    f"would run {escape(row.stage + where)} ({escape(row.reason)})", highlight=False
                )
            return
        results = project.run(
            stage,
            force=force,
            models=models,
            wait=not no_wait,
            workers=workers,
            scheduler=scheduler,
        )
        if stage == "compare":
            _print_comparison(project.comparison())
        for row in results:
            # A fit that just ran and would fail the gate says so now, not at CI's mlm check.
            failed = project.failing_checks(row.variant, row.key) if _fitted(row) else []
            if failed:
                where = "" if project.single_variant else f"{row.variant}: "
                err.print(
                    f"[yellow]note:[/] {escape(where)}{', '.join(failed)} fail mlm check's "
                    "thresholds; `mlm check` says why and what to change",
                    highlight=False,
                )
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
    as_json: JsonOption = False,
) -> None:
    """Each stage and figure: fresh, stale (and which input changed) or missing."""
    with handled():
        project = _project(ctx)
        rows = project.status()
        if quiet:
            raise typer.Exit(0 if all(r.fresh for r in rows) else 1)
        if as_json:
            _print_json(status_json(project, rows))
            return
        several = not project.single_variant
        header = [*(["model"] if several else []), "stage", "state", "reason"]
        cells = [
            [*([row.variant or ""] if several else []), row.stage, row.state, row.reason]
            for row in rows
        ]
        _print_table(
            header,
            cells,
            style=lambda column, text: STATE_STYLE.get(text) if column == "state" else None,
        )


@app.command()
def summary(
    ctx: typer.Context,
    model: ModelOption = None,
    var: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--var",
            help="Only this variable, whatever it is, e.g. u_Subject (repeatable).",
            metavar="NAME",
        ),
    ] = None,
    show_all: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Every variable: also the group effects (u_*, a_*), the auxiliaries (z_*, "
            "chol_*, Intercept_centred) and a correlation's diagonal and mirror cells.",
        ),
    ] = False,
    prob: Annotated[
        float,
        typer.Option(
            "--prob",
            min=0.01,
            max=0.99,
            help="Width of the equal-tailed interval; its columns say it (eti95_lb, eti95_ub; "
            "eti90_* at 0.9).",
        ),
    ] = 0.95,
    as_json: JsonOption = False,
) -> None:
    """Posterior summary and diagnostics of the cached trace, in the order of lme4's summary.

    The population-level effects (Intercept, then the b_* in the model's order), then each
    group's SDs and correlations (sigma_<group>, corr_<group>), then the residual and family
    parameters (sigma, nu, ...); any other variable of a hand-written model after the
    population-level effects. The group effects (u_*; lme4's ranef) and the auxiliaries are
    left out, and the line under the table says which: --var NAME shows one, --all all. A
    constant cell (a correlation's diagonal) has sd 0 and no ESS or r_hat ("-"). With
    several model variants, a first line names the one shown (--model picks another).

    Numbers have 4 significant figures and are never cut short: on a terminal the table
    fits its width by folding parameter names after "[" or ", "; piped, or when it cannot
    fit, it is plain aligned text.

    --json holds every variable, as --all (or those --var names), each parameter with its
    role (population, group, residual, other, group_effect, auxiliary) to filter on.
    """
    with handled():
        project = _project(ctx)
        table_df, record, fresh = project.summary(model, var, show_all or as_json, prob)
        if as_json:
            _print_json(summary_json(table_df, record, fresh))
            return
        if not project.single_variant:
            variants = project.variants()
            shown = model or variants[0]
            others = ", ".join(v for v in variants if v != shown)
            out.print(
                f"variant {shown} ({project.model_file(shown)}); the others: {others} "
                "(--model NAME)",
                highlight=False,
            )
        if not fresh:
            err.print(
                "[yellow]warning:[/] the trace is stale; showing the latest one "
                "(run `mlm run fit` to refresh it)"
            )

        def cell(column: str, value) -> str:
            try:
                value = float(value)
            except (TypeError, ValueError):
                return str(value)
            if value != value:
                return "-"
            if column.startswith("ess"):
                return f"{value:.0f}"
            if column == "r_hat":
                return f"{value:.3f}"
            return _significant(value)

        columns = [c for c in table_df.columns if c in SUMMARY_COLUMNS or c.startswith("eti")]
        rows = [
            [str(name), *(cell(c, row[c]) for c in columns)] for name, row in table_df.iterrows()
        ]
        _print_table(["parameter", *columns], rows, right=set(columns), compact=True)
        from mlm.summary import hidden_note

        note = hidden_note(table_df)
        if note:
            out.print(escape(note), highlight=False, soft_wrap=not out.is_terminal)
        diag = record.get("diagnostics", {}) if record else {}
        if diag:
            # the template's fit.py samples again at 0.99 after divergences: say which it was
            at = f" at target_accept {diag['target_accept']:g}" if "target_accept" in diag else ""
            out.print(
                f"{diag.get('chains')} chains x {diag.get('draws')} draws{at}, "
                f"{plural(diag.get('divergences', 0), 'divergence')}, max r_hat "
                f"{diag.get('max_r_hat', float('nan')):.3f}, min bulk ESS "
                f"{diag.get('min_ess_bulk', float('nan')):.0f}; sampled "
                f"{record.made_at} in {record.get('wall_time_s')} s",
                highlight=False,
                soft_wrap=not out.is_terminal,
            )


@app.command()
def clean(
    ctx: typer.Context,
    keep: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--keep", min=0, help="Keep the newest N traces of each model."),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask (needed when not on a terminal).")
    ] = False,
    dry: Annotated[
        bool, typer.Option("--dry", help="List what would be removed, remove nothing.")
    ] = False,
) -> None:
    """Drop the cache (.mlm/), or with --keep N prune old traces; asks first.

    Quarantined (.corrupt-*) and half-written (.tmp-*) trace folders go too.
    """
    from mlm.store.traces import removal

    with handled():
        project = _project(ctx)
        store = project.store
        current = None
        if keep is not None:
            # The trace each variant uses now is kept first (as Project.clean does).
            session = project.session()
            current = {v: session.fit(v).key() for v in project.variants()}
        plan = removal(store.paths, store.variants(), keep, current)
        everything = keep is None and store.dir.exists()
        if not plan and not everything:
            out.print("nothing to clean")
            return
        what = _removal_text(plan, everything)
        if dry:
            out.print(f"would remove {what}:", highlight=False)
            for path in [*plan.traces, *plan.leftovers]:
                out.print(f"  {escape(str(path.relative_to(project.root)))}", highlight=False)
            return
        if not yes:
            if not _interactive():
                raise MlmError(
                    f"mlm clean would remove {what}; stdin is not a terminal, so pass --yes "
                    "to remove them without asking (or --dry to list them)"
                )
            if not typer.confirm(f"remove {what}?", default=False, err=True):
                err.print("nothing removed")
                raise typer.Exit(1)
        removed = store.clean(keep, current=current)
        done = "cache removed" if keep is None else f"kept the newest {keep} trace(s)"
        out.print(f"{done}; {removed} trace(s) deleted")


def _interactive() -> bool:
    """Whether a person can answer a question (stdin is a terminal)."""
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def _removal_text(plan, everything: bool) -> str:
    parts = [f"{len(plan.traces)} trace(s)"]
    if plan.leftovers:
        parts.append(f"{len(plan.leftovers)} quarantined or half-written folder(s)")
    text = " and ".join(parts)
    return f"the whole cache .mlm/ ({text})" if everything else text


generate_app = typer.Typer(
    help="Write new project files to edit (Rails-style: --pretend, --force, --skip).",
    no_args_is_help=True,
)
app.add_typer(generate_app, name="generate")
destroy_app = typer.Typer(
    help="Undo what `mlm generate` wrote, asking before removing anything edited since.",
    no_args_is_help=True,
)
app.add_typer(destroy_app, name="destroy")

PretendOption = Annotated[
    bool,
    typer.Option("--pretend", "-p", help="Show what would change; change nothing."),
]
SkipOption = Annotated[
    bool, typer.Option("--skip", "-s", help="Keep files that differ (no question asked).")
]
ForceOption = Annotated[
    bool,
    typer.Option("--force", "-f", help="Overwrite or remove files that differ (no question)."),
]
VERB_STYLE = {
    "create": "bold green",
    "append": "bold green",
    "insert": "bold green",
    "move": "bold green",
    "identical": "bold blue",
    "conflict": "bold red",
    "force": "bold yellow",
    "skip": "bold yellow",
    "remove": "bold red",
}


def _generator(ctx: typer.Context, pretend: bool, force: bool, skip: bool):
    """A Generator for the project that prints Rails-style action lines and, at a terminal,
    shows the diff of a conflict and asks."""
    from mlm.generators import Generator
    from mlm.layout import Layout

    def say(action) -> None:
        style = VERB_STYLE.get(action.verb, "bold")
        note = f"  {escape(action.note)}" if action.note else ""
        out.print(
            f"[{style}]{action.verb:>12}[/]  {escape(action.path)}{note}",
            highlight=False,
            soft_wrap=True,
        )

    def ask(question: str, diff: str) -> bool:
        from rich.syntax import Syntax

        if diff:
            err.print(Syntax(diff, "diff", theme="ansi_dark", background_color="default"))
        return typer.confirm(question, default=False, err=True)

    layout = Layout(ctx.obj or Path.cwd())
    return Generator(layout, pretend, force, skip, say=say, ask=ask if _interactive() else None)


@generate_app.command("model")
def generate_model(
    ctx: typer.Context,
    name: Annotated[
        Optional[str],  # noqa: UP045
        typer.Argument(help="Name of the new variant (models/NAME.py); none: model.py."),
    ] = None,
    source: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--from", help="The variant to copy (default: model.py).", metavar="OTHER"),
    ] = None,
    formula: FormulaOption = None,
    sigma: SigmaOption = None,
    family: FamilyOption = None,
    prior: PriorOption = None,
    force: ForceOption = False,
    skip: SkipOption = False,
    pretend: PretendOption = False,
) -> None:
    """Copy a model variant to models/NAME.py, or write one from --formula, to edit.

    A templates/model.py.jinja in the project (or in ~/.config/mlm/templates/) is rendered
    instead of the copy. Each --prior replaces one of the formula's default priors. After
    the second variant, the figures move to figures/<variant>/.
    """
    from mlm.generators import generate_formula_model
    from mlm.generators import generate_model as generate

    with handled():
        gen = _generator(ctx, pretend, force, skip)
        if formula is not None:
            from mlm.template import formula_model

            if source is not None:
                raise MlmError("give either --from (copy a variant) or --formula, not both")
            target, text = formula_model(
                _project(ctx), name, formula, sigma, family, priors=prior or ()
            )
            generate_formula_model(gen, target, text, formula)
            if not pretend and any(a.verb in ("create", "force") for a in gen.actions):
                out.print("edit it, then `mlm run` fits it")
            return
        if prior:
            raise MlmError("--prior needs --formula (a copied variant keeps its priors)")
        if name is None or sigma or family:
            raise MlmError("give NAME (to copy model.py to models/NAME.py) or --formula")
        generate(gen, name, source)
        if not pretend and any(a.verb in ("create", "force") for a in gen.actions):
            out.print("edit it, then `mlm run` fits and compares every variant")


@generate_app.command("figure")
def generate_figure(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The figure's name: a function NAME in graphics.py.")],
    source: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--from", help="Copy this figure function instead.", metavar="EXISTING"),
    ] = None,
    data: Annotated[
        bool,
        typer.Option("--data", help="Plot the observed outcome against its posterior predictive."),
    ] = False,
    force: ForceOption = False,
    skip: SkipOption = False,
    pretend: PretendOption = False,
) -> None:
    """Append a figure function NAME to graphics.py, drawn from the model's parameters.

    It asks for idata (and data, with --data) and works as written: `mlm run` draws it to
    figures/NAME.png at once. Edit it from there. A templates/figure.py.jinja (or
    figure_data.py.jinja) in the project, or in ~/.config/mlm/templates/, replaces the stub.
    """
    from mlm.generators import generate_figure as generate

    with handled():
        gen = _generator(ctx, pretend, force, skip)
        generate(gen, name, source, data)
        if not pretend and any(a.verb in ("append", "force") for a in gen.actions):
            out.print(f"next: [bold]mlm run graphics:{escape(name)}[/] draws it")


@generate_app.command("test")
def generate_test(
    ctx: typer.Context,
    model: ModelOption = None,
    force: ForceOption = False,
    skip: SkipOption = False,
    pretend: PretendOption = False,
) -> None:
    """Write tests/test_recovery.py: fit the model to data.simulate()'s data and check that
    every parameter simulate() sets is recovered (needs simulate() in data.py).

    The truth is simulate()'s numeric keyword defaults whose names are parameters of the
    model; run it with `pytest`.
    """
    from mlm.generators import generate_test as generate

    with handled():
        gen = _generator(ctx, pretend, force, skip)
        generate(gen, model)


@destroy_app.command("figure")
def destroy_figure(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The figure function to remove.")],
    force: ForceOption = False,
    skip: SkipOption = False,
    pretend: PretendOption = False,
) -> None:
    """Remove figure function NAME from graphics.py and its drawn files.

    Without asking only when it is what `mlm generate figure` wrote; edited since (or
    written by hand), it is shown and you are asked (--force removes it, --skip keeps it).
    """
    from mlm.generators import destroy_figure as destroy

    with handled():
        destroy(_generator(ctx, pretend, force, skip), name)


@destroy_app.command("model")
def destroy_model(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The variant to remove (models/NAME.py).")],
    force: ForceOption = False,
    skip: SkipOption = False,
    pretend: PretendOption = False,
) -> None:
    """Remove models/NAME.py and its figures (figures/NAME/).

    Without asking only when the file is what `mlm generate model` wrote. With one variant
    left, its figures move back to figures/. Its traces stay in the cache (`mlm clean`).
    """
    from mlm.generators import destroy_model as destroy

    with handled():
        destroy(_generator(ctx, pretend, force, skip), name)


@destroy_app.command("test")
def destroy_test(
    ctx: typer.Context,
    model: ModelOption = None,
    force: ForceOption = False,
    skip: SkipOption = False,
    pretend: PretendOption = False,
) -> None:
    """Remove the tests/test_recovery.py that `mlm generate test` wrote."""
    from mlm.generators import destroy_test as destroy

    with handled():
        destroy(_generator(ctx, pretend, force, skip), model)


@app.command()
def check(
    ctx: typer.Context,
    model: ModelsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Gate on sampling diagnostics (thresholds from mlm.toml's [check]); exit 1 on failure."""
    with handled():
        project = _project(ctx)
        rows = project.check(model)
        if as_json:
            report = check_json(rows)
            _print_json(report)
            raise typer.Exit(0 if report["passed"] else 1)
        verdicts = {"pass": "green", "FAIL": "bold red"}
        _print_table(
            ["model", "check", "value", "threshold", "verdict", "where"],
            [
                [
                    row.variant,
                    row.name,
                    _number(row.name, row.value),
                    _number(row.name, row.threshold),
                    "pass" if row.passed else "FAIL",
                    row.detail,
                ]
                for row in rows
            ],
            right={"value", "threshold"},
            style=lambda column, text: verdicts.get(text) if column == "verdict" else None,
        )
        from mlm.check import advice_lines

        failed = [r for r in rows if not r.passed]
        for variant, text in advice_lines(rows):
            out.print(f"[bold red]{variant}[/]: {escape(text)}")
        if failed:
            raise typer.Exit(1)
        out.print("[green]all checks passed[/]")


@app.command()
def console(
    ctx: typer.Context,
    model: ModelOption = None,
    plain: Annotated[
        bool, typer.Option("--plain", help="Python's own REPL even when IPython is installed.")
    ] = False,
) -> None:
    """An interactive session with project, data, model and idata ready.

    IPython when it is installed (else Python's REPL). Each name is loaded the first time you
    use it, from the cache: idata is the cached trace, and nothing is sampled unless you ask
    (project.run("fit")). np, pd, pm, az and plt are there too.
    """
    with handled():
        from mlm.console import start

        project = _project(ctx, progress=True)
        if model is not None:
            project.layout.chosen([model])
        start(project, model, plain)


@app.command()
def watch(
    ctx: typer.Context,
    port: Annotated[
        int,
        typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1 (default: any free one)."),
    ] = 0,
) -> None:
    """Rerun what became stale on every save, and show it on a local page.

    Watches the slot files, the project's own modules, data/ and mlm.toml. The page (on
    127.0.0.1, at the address printed) shows the status table, every figure and the last
    error, and refreshes itself when a run ends; a failing edit shows its message while
    the last good figures stay. Ctrl-C stops.
    """
    from mlm.watch import watch as start

    def show(stage: str, message: str) -> None:
        err.print(f"[bold cyan]{escape(stage):>10}[/] {escape(message)}", highlight=False)

    def announce(text: str) -> None:
        out.print(escape(text), highlight=False, soft_wrap=True)

    with handled():
        project = _project(ctx)
        start(project.root, port, say=show, announce=announce)


@app.command()
def report(
    ctx: typer.Context,
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--output", "-o", help="Where to write it (default: report.html)."),
    ] = None,
) -> None:
    """Write one self-contained HTML report: code, graph, summary, checks, comparison.

    Runs first what is stale (sampling, when the trace is not fresh), as `mlm run` does.
    """
    os.environ.setdefault("MPLBACKEND", "Agg")
    with handled():
        path = _project(ctx, progress=True).report(output)
        out.print(f"wrote [bold]{escape(str(path))}[/]")


@app.command()
def study(
    ctx: typer.Context,
    replicates: Annotated[
        int, typer.Option("--replicates", "-n", min=1, help="Datasets per design point.")
    ] = 100,
    truth: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--truth",
            "-t",
            metavar="NAME=VALUE",
            help="A simulate() argument (repeatable); no --truth or --grid: SBC.",
        ),
    ] = None,
    grid: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--grid",
            "-g",
            metavar="NAME=V1,V2",
            help="A design axis (repeatable), e.g. n_groups=5,10,20.",
        ),
    ] = None,
    workers: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--workers",
            "-w",
            min=0,
            help="Local Dask workers (default: one per core; 0: in this process).",
        ),
    ] = None,
    scheduler: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--scheduler", metavar="ADDRESS", help="A running Dask scheduler."),
    ] = None,
    draws: Annotated[Optional[int], typer.Option(min=1, help="Draws per chain.")] = None,  # noqa: UP045
    tune: Annotated[Optional[int], typer.Option(min=1, help="Tuning steps per chain.")] = None,  # noqa: UP045
    chains: Annotated[Optional[int], typer.Option(min=1, help="Chains per fit.")] = None,  # noqa: UP045
    model: ModelOption = None,
) -> None:
    """Simulation study: power, bias, RMSE, coverage (and SBC ranks) over many fits.

    Each dataset comes from data.simulate(rng, **truth, **design), or, with neither --truth
    nor --grid, from the model's prior predictive (simulation-based calibration).
    Finished replicates are cached: a rerun, or a run with more replicates, computes only
    the missing ones.
    """
    os.environ.setdefault("MPLBACKEND", "Agg")
    with handled():
        from mlm.study import parse_values

        project = _project(ctx, progress=True)
        result = project.study(
            replicates,
            parse_values(truth or [], False),
            parse_values(grid or [], True),
            workers,
            scheduler,
            model,
            draws=draws,
            tune=tune,
            chains=chains,
        )
        _print_study(result)


PREDICT_SHOWN = 20  # rows of `mlm predict`'s table printed; --out writes them all


@app.command()
def predict(
    ctx: typer.Context,
    newdata: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Argument(
            help="Rows to predict for (.csv, .tsv or .parquet): every predictor column; the "
            "outcome may be left out. With --compare: the rows to average over (default: "
            "the data's).",
            metavar="[NEW.csv]",
        ),
    ] = None,
    model: ModelOption = None,
    out_file: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--out",
            "-o",
            help="Write the table to FILE (.csv, .tsv or .parquet) and the draws to FILE's "
            "name with .nc (default: print the table only).",
            metavar="FILE",
        ),
    ] = None,
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            help="response: new observations (brms' predict); mean: the expected outcome "
            "(brms' fitted).",
        ),
    ] = "response",
    new_levels: Annotated[
        str,
        typer.Option(
            "--new-levels",
            help="A group level the fit never saw: gaussian (its effects drawn from the fitted "
            "population) or uncertainty (a fitted level's, picked at random per draw).",
        ),
    ] = "gaussian",
    compare_spec: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--compare",
            help="Average difference in the expected outcome between two values of a "
            "predictor, over the rows, e.g. tx=0,1 (the second minus the first).",
            metavar="VAR=A,B",
        ),
    ] = None,
    by: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--by", help="With --compare: one comparison per value of COLUMN.", metavar="COLUMN"
        ),
    ] = None,
    prob: Annotated[
        float, typer.Option("--prob", min=0.01, max=0.99, help="Width of the interval.")
    ] = 0.95,
    seed: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--seed", help="Seed of the draws (default: the project's)."),
    ] = None,
    observed: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--observed",
            help="The likelihood to predict, when the model has several.",
            metavar="NAME",
        ),
    ] = None,
) -> None:
    """Predict for new rows (or compare two values of a predictor) from the cached trace.

    Nothing is resampled: each posterior draw gives one draw of the predictions (a stale
    trace is fitted first, as `mlm run fit` would). Prints mean, sd and the 95% interval per
    row; the draws are cached under .mlm/predict/, so the same call again only reads them.

    No number or label is ever cut short: on a terminal too narrow for the table, labels
    fold at a space; when even that does not fit, and piped, it is plain aligned text.
    """
    with handled():
        project = _project(ctx, progress=True)
        if compare_spec is not None:
            from mlm.predict.cache import parse_values

            variable, values = parse_values(compare_spec)
            result = project.comparison_of(
                variable,
                values,
                newdata,
                model,
                by,
                seed=seed,
                new_levels=new_levels,
                observed=observed,
            )
        else:
            if newdata is None:
                raise MlmError(
                    "mlm predict needs a file of new rows (NEW.csv), or --compare VAR=A,B to "
                    "compare two values of a predictor over the data's rows"
                )
            if by is not None:
                raise MlmError("--by goes with --compare")
            result = project.predictions(
                newdata, model, kind, seed=seed, new_levels=new_levels, observed=observed
            )
        table = result.table(prob)
        _print_predictions(table, result)
        if out_file is not None:
            import shutil

            from mlm.predict.cache import write_table

            nc = write_table(table, out_file)
            if result.path.is_file():
                shutil.copyfile(result.path, nc)
            else:
                result.draws.to_netcdf(nc)
            out.print(f"wrote [bold]{escape(str(out_file))}[/] and [bold]{escape(str(nc))}[/]")


def _print_predictions(table, result) -> None:
    """The tidy table of `mlm predict`, its first rows when long."""
    shown = table.head(PREDICT_SHOWN)
    draws = result.draws
    samples = draws.sizes.get("chain", 1) * draws.sizes.get("draw", 1)
    name = escape(str(draws.name).split(":")[0])
    if result.request.comparison:
        title = f"{name}: average difference in the expected value"
    elif result.request.kind == "response":
        title = f"{name}: new observations"
    else:
        title = f"{name}: expected value"
    out.print(f"[bold]{title}[/] ({samples} posterior draws)", highlight=False)
    numeric = {"mean", "sd"} | {c for c in table.columns if str(c).startswith("q")}
    _print_table(
        [str(c) for c in shown.columns],
        _table_cells(shown, numeric),
        right={str(c) for c in numeric},
    )
    if len(table) > len(shown):
        out.print(f"... {len(table) - len(shown)} more rows (--out FILE writes them all)")
    where = "read from" if result.cached else "cached in"
    err.print(f"draws {where} {escape(str(result.path))}", highlight=False)


def _print_table(
    header: list[str],
    rows: list[list[str]],
    right: set[str] = frozenset(),
    *,
    style=None,
    compact: bool = False,
) -> None:
    """Print a table with every cell whole: never an ellipsis, never a number cut short.

    On a terminal it is a rich table when it fits the width, its cells folded where that is
    needed and only at a space or after `[` (a parameter's `sigma_g[Intercept, x]` folds
    as `sigma_g[` / `Intercept, x]`); when even that does not fit, and whenever stdout is
    not a terminal, it is plain aligned text (columns two spaces apart, one when
    `compact`), its lines as long as they need to be. Columns in `right` are right-aligned;
    `style(column, text)` gives a cell's rich style on a terminal.
    """
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    if out.is_terminal:
        folded = _folded_widths(header, rows, widths, compact)
        if folded is not None:
            from rich import box
            from rich.text import Text

            table = Table(
                box=box.SIMPLE_HEAD if compact else box.HEAVY_HEAD,
                show_edge=False,
                pad_edge=False,
                padding=0 if compact else (0, 1),
                header_style="bold",
            )
            for name, width in zip(header, folded, strict=True):
                table.add_column(
                    escape(name),
                    justify="right" if name in right else "left",
                    no_wrap=True,
                    min_width=width,
                    max_width=width,
                )
            for row in rows:
                cells = []
                for name, text, width in zip(header, row, folded, strict=True):
                    shown = "\n".join(_fold(text, width))
                    cells.append(Text(shown, style=(style(name, text) if style else None) or ""))
                table.add_row(*cells)
            out.print(table)
            return
    gap = " " if compact else "  "
    for row in [header, *rows]:
        line = gap.join(
            text.rjust(width) if name in right else text.ljust(width)
            for name, text, width in zip(header, row, widths, strict=True)
        )
        out.print(line.rstrip(), markup=False, highlight=False, soft_wrap=True)


def _folded_widths(header, rows, widths, compact: bool) -> list[int] | None:
    """Column widths that fit the terminal, narrowing the widest foldable column first; None
    when the table cannot fit without cutting a word or number."""
    gaps = (len(header) - 1) * (1 if compact else 3)
    least = [
        max(len(header[i]), *(max(map(len, _fold(r[i], 0))) for r in rows)) if rows else widths[i]
        for i in range(len(header))
    ]
    if sum(least) + gaps > out.width:
        return None
    folded = list(widths)
    while sum(folded) + gaps > out.width:
        i = max(range(len(folded)), key=lambda j: folded[j] - least[j])
        folded[i] -= 1
    # each column as wide as its widest folded line
    return [
        max(len(header[i]), *(max(map(len, _fold(r[i], folded[i]))) for r in rows))
        if rows
        else folded[i]
        for i in range(len(header))
    ]


def _fold(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width` characters, broken only at a space or after `[`
    (a piece longer than `width` stays whole on its own line); width 0: every piece."""
    import re

    pieces = [p for p in re.split(r"(?<=[ \[])", text) if p]
    lines = [""]
    for piece in pieces:
        if lines[-1] and len((lines[-1] + piece).rstrip()) > width:
            lines.append("")
        lines[-1] += piece
    return [line.rstrip() for line in lines] or [""]


def _fitted(row) -> bool:
    """A fit stage this run sampled (a complete trace under its key)."""
    return row.ran and row.stage == "fit" and row.key is not None and row.variant is not None


def _table_cells(table, numeric: set) -> list[list[str]]:
    """Each row's cells as text: `numeric` columns to 4 significant figures, others as they
    are (row by row as records: iterrows() would make an int column of an all-number row a
    float, 0 -> 0.0)."""
    return [
        [_significant(row[c]) if c in numeric else str(row[c]) for c in table.columns]
        for row in table.to_dict("records")
    ]


def _significant(value) -> str:
    """A number to 4 significant figures, trailing zeros kept (2.000, 0.06176, 1.2e+05); "-"
    for NaN."""
    value = float(value)
    if value != value:
        return "-"
    text = f"{value:#.4g}"
    return text if "e" in text else text.rstrip(".")


def _print_study(result) -> None:
    interval = result.study.settings["interval"]
    out.print(
        f"[bold]{len(result.records)} replicates, {interval:.0%} intervals, "
        "± Monte Carlo standard error[/]",
        highlight=False,
    )
    design_keys = list(result.study.grid)
    header = [*design_keys, "parameter", "truth", "bias", "rmse", "coverage", "power"]
    rows = []
    shown = [r for r in result.rows if "truth" in r]
    for row in shown or result.rows:
        cells = [str(row["design"][k]) for k in design_keys] + [row["parameter"]]
        cells.append(_number("truth", row.get("truth")))
        for name in ("bias", "rmse", "coverage", "power"):
            value = row.get(name)
            cells.append(
                "-" if value is None else f"{value:.3f}±{row.get(name + '_se', float('nan')):.3f}"
            )
        rows.append(cells)
    _print_table(header, rows, right={c for c in header if c != "parameter"})
    p_values = result.rank_p_values() if result.study.sbc else {}
    for label, p in p_values.items():
        if p < 0.01:
            err.print(
                f"[yellow]warning:[/] SBC ranks of {escape(label)} are not uniform "
                f"(chi-square p = {p:.3g})"
            )
    for path in result.figures:
        out.print(f"drew {escape(str(path))}")
    out.print(
        f"[green]done[/]: {result.computed} replicate(s) fitted, "
        f"{len(result.records) - result.computed} from the cache"
    )


def _print_comparison(record: dict) -> None:
    columns = ("elpd", "se", "elpd_diff", "dse", "weight", "p")
    out.print("[bold]PSIS-LOO comparison[/]")
    _print_table(
        ["model", *("p_loo" if c == "p" else c for c in columns)],
        [
            [name, *(_number(c, record["table"][name].get(c)) for c in columns)]
            for name in record["order"]
        ],
        right={"elpd", "se", "elpd_diff", "dse", "weight", "p_loo"},
    )
    best, *rest = record["order"]
    for name in rest:
        row = record["table"][name]
        diff, dse = abs(float(row.get("elpd_diff", "nan"))), float(row.get("dse", "nan"))
        # LOO's rule of thumb (Vehtari's FAQ): a difference under 4 is small; above, it is
        # read against its SE. Stacking weights can be 1 and 0 all the same.
        if diff < 4 or diff < 2 * dse:
            out.print(
                f"note: {escape(name)}'s elpd is {diff:.1f} below {escape(best)}'s, with an "
                f"SE of {dse:.1f} for the difference: no clear difference in predictive "
                f"accuracy ({'under 4' if diff < 4 else 'within 2 SEs of 0'}); the weights "
                "can be 1 and 0 all the same",
                highlight=False,
                soft_wrap=not out.is_terminal,
            )
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


# --json: the shapes scripts read (documented in README.md, "Scripts and CI") -----------------


def _print_json(content: dict) -> None:
    import json

    sys.stdout.write(json.dumps(content, indent=2, allow_nan=False) + "\n")


def _finite(value):
    """A number JSON can hold: NaN and infinities become null."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if value == value and abs(value) != float("inf") else None


def status_json(project, rows) -> dict:
    """`mlm status --json`: {project, root, variants, fresh, stages: [...]}."""
    return {
        "project": project.name,
        "root": str(project.root),
        "variants": project.variants(),
        "fresh": all(r.fresh for r in rows),
        "stages": [
            {
                "stage": r.stage,
                "variant": r.variant,
                "state": r.state,
                "reason": r.reason,
                "key": r.key,
            }
            for r in rows
        ],
    }


def check_json(rows) -> dict:
    """`mlm check --json`: {passed, checks: [...], advice: [...]}."""
    from mlm.check import advice_lines

    return {
        "passed": all(r.passed for r in rows),
        "checks": [
            {
                "variant": r.variant,
                "check": r.name,
                "value": _finite(r.value),
                "threshold": _finite(r.threshold),
                "passed": bool(r.passed),
                "detail": r.detail,
            }
            for r in rows
        ],
        "advice": [{"variant": v, "text": text} for v, text in advice_lines(rows)],
    }


def summary_json(table_df, record, fresh: bool) -> dict:
    """`mlm summary --json`: {fresh, key, made_at, wall_time_s, diagnostics, parameters}."""
    diag = dict(record.get("diagnostics", {})) if record else {}
    return {
        "fresh": bool(fresh),
        "key": record.key if record else None,
        "made_at": record.made_at if record else None,
        "wall_time_s": _finite(record.get("wall_time_s")) if record else None,
        "diagnostics": {
            k: (_finite(v) if isinstance(v, float) else v)
            for k, v in diag.items()
            if isinstance(v, int | float | str | bool) or v is None
        },
        "parameters": [
            {
                "parameter": str(name),
                **{str(c): row[c] if c == "role" else _finite(row[c]) for c in table_df.columns},
            }
            for name, row in table_df.iterrows()
        ],
    }


def reflow_help(typer_app: typer.Typer) -> None:
    """Join the lines of each paragraph of every command's help (docstrings are wrapped at
    100 columns, the terminal wraps them again) and keep rich from reading [x] as markup."""
    import inspect

    def reflowed(text: str | None) -> str | None:
        if not text:
            return text
        paragraphs = [" ".join(p.split()) for p in inspect.cleandoc(text).split("\n\n")]
        return escape("\n\n".join(p for p in paragraphs if p))

    for info in typer_app.registered_commands:
        info.help = reflowed(info.help or inspect.getdoc(info.callback))
    callback = typer_app.registered_callback
    if callback is not None:
        callback.help = reflowed(callback.help or inspect.getdoc(callback.callback))
    typer_app.info.help = reflowed(typer_app.info.help)
    for group in typer_app.registered_groups:
        group.help = reflowed(group.help)
        reflow_help(group.typer_instance)


def main() -> None:
    interrupts.install()  # Ctrl-C never raised inside compiled model code (it crashed)
    # PyTensor warns on import that its C backend found no BLAS library (a pip install has
    # none). PyMC 6 compiles models with numba, which brings its own, so nothing mlm runs
    # is slowed: the six-line warning only alarmed new users.
    warnings.filterwarnings(
        "ignore", message="PyTensor could not link to a BLAS installation", category=UserWarning
    )
    try:
        reflow_help(app)
        app(args=_with_simulate_alias(sys.argv[1:]), prog_name="mlm")
    except SystemExit as exc:
        # typer turns a Ctrl-C outside a command's handled() (while it parses the command
        # line, or a command starts) into exit 130 without a word
        if exc.code == 130:
            _say_interrupted()
        raise
    finally:
        # Everything is written and closed by now: a Ctrl-C from here on would only turn
        # the exit status into a signal death while the interpreter shuts down.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        interrupts.settle()
        # Once PyMC has been imported, the interpreter's final garbage collection takes
        # about a second; frozen objects are skipped by it, and the process exits at once.
        gc.freeze()


def _with_simulate_alias(args: list[str]) -> list[str]:
    """`mlm run simulate ...` is the simulation study, `mlm study ...`, with its own options."""
    for i, arg in enumerate(args):
        if arg in ("-C", "--project"):
            continue
        if i and args[i - 1] in ("-C", "--project"):
            continue
        if arg == "run" and args[i + 1 : i + 2] == ["simulate"]:
            return [*args[:i], "study", *args[i + 2 :]]
        if not arg.startswith("-"):
            break
    return args


if __name__ == "__main__":
    sys.exit(main())
