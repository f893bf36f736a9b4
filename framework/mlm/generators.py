"""`mlm generate` and `mlm destroy`: write project files to edit, and take them back.

As Rails' generators do, each step is announced by an action line (`create`, `append`,
`insert`, `identical`, `conflict`, `force`, `skip`, `remove`), `pretend` shows the lines
and changes nothing, and a file (or figure function) that differs from what would be
written is a conflict: `force` overwrites it, `skip` keeps it, and a person at a terminal
is shown the diff and asked. What a generator wrote is remembered (`.mlm/generated.json`,
the text itself), so `destroy` removes it without asking only while it is unchanged.

The stubs are Jinja templates: `templates/NAME.jinja` in the project, then in the user's
config folder (`$XDG_CONFIG_HOME/mlm/templates/`, by default ~/.config/mlm/templates/),
then mlm's own (project_template/templates/), as Rails' lib/templates overrides its
generators. figure.py.jinja and figure_data.py.jinja draw a figure, test_recovery.py.jinja
is `mlm generate test`'s, and a model.py.jinja, when there is one, is rendered for a new
variant instead of copying model.py.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import keyword
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mlm.errors import MlmError
from mlm.layout import DEFAULT_VARIANT, MODELS_DIR, Layout
from mlm.store import atomic_write_json, now, read_json

VERBS = ("create", "append", "insert", "identical", "conflict", "force", "skip", "remove", "move")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_FIGURE_PARAMETERS = 6


def template_folders(root: Path) -> list[Path]:
    """Where stubs are looked for, first match wins: the project's, the user's, mlm's."""
    from mlm.codegen.templates import template_dir, user_templates

    return [root / "templates", user_templates(), template_dir() / "templates"]


def render(root: Path, stub: str, **context) -> str:
    """The stub `stub` (e.g. "figure.py") rendered with `context`."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in template_folders(root)]),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    try:
        template = environment.get_template(f"{stub}.jinja")
    except jinja2.TemplateSyntaxError as exc:
        raise MlmError(
            f"{exc.filename}, line {exc.lineno}: template error: {exc.message}"
        ) from None
    try:
        return template.render(**context)
    except jinja2.UndefinedError as exc:
        known = ", ".join(sorted(context))
        raise MlmError(
            f"{template.filename}: {exc.message}; a {stub} template may use: {known}"
        ) from None


def has_template(root: Path, name: str) -> Path | None:
    """The template file `name.jinja` that would be used, or None when there is none."""
    for folder in template_folders(root):
        if (folder / f"{name}.jinja").is_file():
            return folder / f"{name}.jinja"
    return None


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Action:
    """One line of a generator's output: `create  models/wide.py`."""

    verb: str
    path: str
    note: str = ""


@dataclass
class Generator:
    """Writes (or, with `pretend`, only announces) files of one project.

    `say(action)` shows each action as it happens; `ask(question, diff)` asks a person
    whether to overwrite a conflict (None: nobody to ask, so a conflict is an error unless
    `force` or `skip`).
    """

    layout: Layout
    pretend: bool = False
    force: bool = False
    skip: bool = False
    say: Callable[[Action], None] = lambda action: None
    ask: Callable[[str, str], bool] | None = None
    actions: list[Action] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.force and self.skip:
            raise MlmError("give --force or --skip, not both")

    @property
    def root(self) -> Path:
        return self.layout.root

    # what the generators wrote ------------------------------------------------------------
    @property
    def _record_path(self) -> Path:
        return self.layout.store.paths.generated

    def _records(self) -> dict:
        return read_json(self._record_path) or {}

    def remember(self, what: str, text: str) -> None:
        if self.pretend:
            return
        records = self._records()
        records[what] = {"sha": _sha(text), "text": text, "made_at": now()}
        atomic_write_json(self._record_path, records)

    def forget(self, what: str) -> None:
        records = self._records()
        if what in records and not self.pretend:
            del records[what]
            atomic_write_json(self._record_path, records)

    def generated(self, what: str) -> str | None:
        """The text a generator wrote for `what` (a file, or graphics.py:NAME), if known."""
        entry = self._records().get(what)
        return entry.get("text") if isinstance(entry, dict) else None

    # actions ------------------------------------------------------------------------------
    def act(self, verb: str, path: Path | str, note: str = "") -> None:
        shown = path.relative_to(self.root).as_posix() if isinstance(path, Path) else path
        action = Action(verb, shown, note)
        self.actions.append(action)
        self.say(action)

    def resolve(
        self, path: Path, what: str, old: str, new: str, question: str, refusal: str = ""
    ) -> bool:
        """A conflict between `old` (there now) and `new` ("" to remove it): go ahead
        (True) or keep `old`. Nobody to ask, and neither force nor skip: an error saying
        `refusal` (or that the two differ)."""
        self.act("conflict", path, what)
        if self.force:
            self.act("force", path, what)
            return True
        if self.skip:
            self.act("skip", path, what)
            return False
        shown = path.relative_to(self.root).as_posix()
        diff = "".join(
            difflib.unified_diff(
                old.splitlines(keepends=True),
                new.splitlines(keepends=True),
                f"{shown} (now)",
                f"{shown} (mlm's)",
            )
        )
        if self.pretend and self.ask is not None:
            return False  # a person would be asked; pretend shows the conflict only
        if self.ask is None:
            # With --pretend too: the real run would stop here, so pretend does, alike.
            thing = f"{what} in {shown}" if what else shown
            if new:
                refusal = refusal or f"{thing} exists and differs from what mlm would write"
                verb = "overwrite"
            else:
                refusal = refusal or (
                    f"{thing} is not what `mlm generate` wrote (written by hand, or edited since)"
                )
                verb = "remove"
            raise MlmError(
                f"{refusal}; pass --force to {verb} it anyway, --skip to keep it (or run this "
                "at a terminal to see the diff and choose)"
            )
        if self.ask(question, diff):
            self.act("force", path, what)
            return True
        self.act("skip", path, what)
        return False

    def write(self, path: Path, text: str, what: str = "", refusal: str = "") -> bool:
        """Create `path` with `text` (a conflict when it exists and differs; `refusal` is
        the error then, when there is nobody to ask)."""
        if path.exists():
            old = path.read_text()
            if old == text:
                self.act("identical", path, what)
                return False
            if not self.resolve(path, what, old, text, f"Overwrite {path.name}?", refusal):
                return False
        else:
            self.act("create", path, what)
        if not self.pretend:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.mlm-tmp")
            tmp.write_text(text)
            os.replace(tmp, path)
        return True

    def remove(self, path: Path, what: str = "") -> None:
        if path.is_dir():
            self.act("remove", path, what)
            if not self.pretend:
                shutil.rmtree(path)
        elif path.exists():
            self.act("remove", path, what)
            if not self.pretend:
                path.unlink()


# graphics.py: one function per figure ---------------------------------------------------------


def _function_node(tree: ast.Module, name: str) -> ast.FunctionDef | None:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    return None


def _span(node: ast.FunctionDef) -> tuple[int, int]:
    """0-based [start, end) lines of a function, decorators included."""
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
    return start, node.end_lineno


def function_text(source: str, name: str) -> str | None:
    """The source lines of the top-level function `name` (None when there is none)."""
    node = _function_node(ast.parse(source), name)
    if node is None:
        return None
    start, end = _span(node)
    return "".join(source.splitlines(keepends=True)[start:end])


def _without(source: str, name: str) -> str:
    """`source` with the top-level function `name` taken out, blank lines tidied."""
    node = _function_node(ast.parse(source), name)
    lines = source.splitlines(keepends=True)
    start, end = _span(node)
    before, after = lines[:start], lines[end:]
    while before and not before[-1].strip():
        before.pop()
    while after and not after[0].strip():
        after.pop(0)
    if not after:
        return "".join(before)
    return "".join(before) + "\n\n" + "".join(after)


def _replaced(source: str, name: str, text: str) -> str:
    node = _function_node(ast.parse(source), name)
    lines = source.splitlines(keepends=True)
    start, end = _span(node)
    return "".join(lines[:start]) + text + "".join(lines[end:])


def _appended(source: str, text: str) -> str:
    return source.rstrip("\n") + "\n\n\n" + text if source.strip() else text


def _with_imports(source: str, needed: list[str]) -> tuple[str, list[str]]:
    """`source` with each import line of `needed` it lacks added after its imports."""
    tree = ast.parse(source)
    have = {ast.unparse(node) for node in tree.body if isinstance(node, ast.Import)}
    missing = [line for line in needed if line not in have]
    if not missing:
        return source, []
    lines = source.splitlines(keepends=True)
    imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    if imports:
        at = max(n.end_lineno for n in imports)
        block = "".join(f"{line}\n" for line in missing)
    else:
        first = tree.body[0] if tree.body else None
        docstring = (
            first is not None
            and isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        )
        at = first.end_lineno if docstring else 0
        block = ("\n" if docstring else "") + "".join(f"{line}\n" for line in missing) + "\n"
    return "".join(lines[:at]) + block + "".join(lines[at:]), missing


def _graphics(layout: Layout) -> tuple[Path, str]:
    path = layout.root / "graphics.py"
    if not path.is_file():
        raise MlmError(f"graphics.py not found in {layout.root}")
    source = path.read_text()
    try:
        ast.parse(source)
    except SyntaxError as exc:
        raise MlmError(f"graphics.py, line {exc.lineno}: syntax error: {exc.msg}") from None
    return path, source


def _check_figure_name(name: str) -> None:
    if not NAME.fullmatch(name) or name.startswith("_"):
        raise MlmError(
            f"{name!r} cannot name a figure: use letters, digits and '_' (a Python function "
            "name), not starting with '_' (that makes a private helper, not a figure)"
        )
    _not_a_keyword(name, "a figure", "function")


def _not_a_keyword(name: str, what: str, kind: str) -> None:
    """`def class(...)` or models/def.py would not be Python: refuse before writing."""
    if keyword.iskeyword(name):
        raise MlmError(
            f"{name!r} cannot name {what}: it is a Python keyword, so it cannot be a "
            f"{kind} name (try {name}_ or a longer name)"
        )


@dataclass(frozen=True)
class ModelFacts:
    """What a figure or test stub is drawn from: the model's parameter names."""

    parameters: list[str]  # free variables, then deterministics
    scalars: list[str]  # those of them with no dims, when known
    observed: list[str]
    deterministics: list[str] = field(default_factory=list)


def model_facts(layout: Layout, variant: str | None = None) -> ModelFacts:
    """The variant's parameters: from the trace in the cache when there is one (names and
    dims), else from the model stage's record, else by building the model."""
    from mlm.stages import Session

    session = Session(layout)
    variant = variant or layout.variants()[0]
    store = layout.store
    record = store.read(store.paths.model_record(variant))
    if record is None or not record.get("free_variables"):
        session.model(variant).value()  # builds the model and writes its record
        record = store.read(store.paths.model_record(variant))
    free = list(record.get("free_variables", []))
    observed = list(record.get("observed_variables", []))
    scalars: list[str] = []
    deterministics: list[str] = []
    key = store.latest_key(variant)
    if key is not None and store.has_trace(variant, key):
        try:
            posterior = store.load_trace(variant, key)["posterior"]
            for name, var in posterior.data_vars.items():
                dims = [d for d in var.dims if d not in ("chain", "draw")]
                if name not in free:
                    deterministics.append(str(name))
                if not dims:
                    scalars.append(str(name))
        except Exception:  # a trace that cannot be read gives no dims: use the record
            scalars = []
    return ModelFacts(free + deterministics, scalars, observed, deterministics)


def _figure_parameters(facts: ModelFacts) -> list[str]:
    """The parameters a generated figure shows: scalar ones first, at most a few."""
    chosen = [p for p in facts.scalars if p in facts.parameters] or facts.parameters
    return chosen[:MAX_FIGURE_PARAMETERS]


def _data_column(layout: Layout, observed: list[str]) -> str:
    """The data column a figure of the data plots: the likelihood's, when a column has its
    name (or the name without `_obs`), else the data record's last column."""
    record = layout.store.read(layout.store.paths.data_record)
    columns = list(record.get("columns", [])) if record else []
    for name in observed:
        for candidate in (name, name.removesuffix("_obs")):
            if candidate in columns or not columns:
                return candidate
    if columns:
        return columns[-1]
    raise MlmError("no data record to pick a column from; run `mlm run data` first")


def generate_figure(
    gen: Generator, name: str, source: str | None = None, data: bool = False
) -> Path:
    """Append figure function `name` to graphics.py: a copy of `source`'s, or a stub drawn
    from the model's parameters (with `data`, the observed outcome against its posterior
    predictive)."""
    _check_figure_name(name)
    layout = gen.layout
    path, text = _graphics(layout)
    if source is not None:
        original = function_text(text, source)
        if original is None:
            raise MlmError(f"graphics.py has no function {source}() to copy")
        node = _function_node(ast.parse(original), source)
        head = original.splitlines(keepends=True)
        offset = node.lineno - min([node.lineno, *(d.lineno for d in node.decorator_list)])
        head[offset] = head[offset].replace(f"def {source}(", f"def {name}(", 1)
        stub, imports = "".join(head), []
    else:
        facts = model_facts(layout)
        context = {
            "name": name,
            "parameters": _figure_parameters(facts),
            "all_parameters": facts.parameters,
            "observed": facts.observed[0] if facts.observed else "y",
            "column": _data_column(layout, facts.observed) if data else "",
            "project": layout.name,
        }
        stub = render(layout.root, "figure_data.py" if data else "figure.py", **context)
        imports = ["import matplotlib.pyplot as plt", "import numpy as np"]
    stub = stub.rstrip("\n") + "\n"
    what = f"{name}()"
    existing = function_text(text, name)
    if existing is not None:
        if existing.rstrip("\n") == stub.rstrip("\n"):
            gen.act("identical", path, what)
            return path
        if not gen.resolve(path, what, existing, stub, f"Replace {name}() in graphics.py?"):
            return path
        new_text = _replaced(text, name, stub)
    else:
        new_text, added = _with_imports(text, imports)
        for line in added:
            gen.act("insert", path, line)
        new_text = _appended(new_text, stub)
        gen.act("append", path, what)
    if not gen.pretend:
        path.write_text(new_text)
    gen.remember(f"graphics.py:{name}", stub)
    return path


def destroy_figure(gen: Generator, name: str) -> None:
    """Take figure function `name` out of graphics.py, with its drawn files; asks first
    when it is not what `mlm generate figure` wrote."""
    layout = gen.layout
    path, text = _graphics(layout)
    existing = function_text(text, name)
    if existing is None:
        known = [
            n.name
            for n in ast.parse(text).body
            if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")
        ]
        raise MlmError(
            f"graphics.py has no figure {name}(); its figures: {', '.join(known) or 'none'}"
        )
    what = f"{name}()"
    written = gen.generated(f"graphics.py:{name}")
    if written is None or written.rstrip("\n") != existing.rstrip("\n"):
        # Not mlm's, or edited since: removing it would lose the user's work.
        if not gen.resolve(
            path, what, existing, "", f"{name}() was not written by mlm as it is; remove it?"
        ):
            return
    gen.act("remove", path, what)
    if not gen.pretend:
        path.write_text(_without(text, name))
    for drawn in _figure_files(layout, name):
        gen.remove(drawn)
    gen.forget(f"graphics.py:{name}")


def _figure_files(layout: Layout, name: str) -> list[Path]:
    suffix = layout.config.figure_format
    found = [layout.figures_dir / f"{name}.{suffix}"]
    if layout.figures_dir.is_dir():
        found += sorted(layout.figures_dir.glob(f"*/{name}.{suffix}"))
    return [p for p in found if p.is_file()]


# models/NAME.py: a variant ---------------------------------------------------------------------


def _check_variant_name(name: str) -> None:
    if not NAME.fullmatch(name) or name == DEFAULT_VARIANT:
        raise MlmError(
            f"{name!r} cannot name a model variant: use letters, digits and '_' (a Python "
            f"module name), and not {DEFAULT_VARIANT!r}"
        )
    _not_a_keyword(name, "a model variant", "module")


def generate_model(gen: Generator, name: str, source: str | None = None) -> Path:
    """models/NAME.py: the project's model.py.jinja rendered when it has one (or the
    user's), else a copy of `source` (default: the first variant)."""
    _check_variant_name(name)
    layout = gen.layout
    target = layout.root / MODELS_DIR / f"{name}.py"
    if has_template(layout.root, "model.py") and source is None:
        text = render(layout.root, "model.py", name=name, project=layout.name)
    else:
        chosen = layout.chosen([source])[0] if source else layout.variants()[0]
        text = (layout.root / layout.model_file(chosen)).read_text()
    if gen.write(target, text):
        gen.remember(target.relative_to(layout.root).as_posix(), text)
        settle(gen, variants_after(layout, added=name))
    return target


def generate_formula_model(gen: Generator, target: Path, text: str, formula: str) -> Path:
    """Write `text`, the model `formula` gives, to `target` (model.py or models/NAME.py)."""
    what = target.relative_to(gen.root).as_posix()
    beside = " (give a NAME to write models/NAME.py beside it)" if what == "model.py" else ""
    refusal = f"{what} exists and differs from what the formula writes{beside}"
    if gen.write(target, text, f"from {formula}", refusal):
        gen.remember(what, text)
        settle(gen, variants_after(gen.layout, added=target.stem))
    return target


def destroy_model(gen: Generator, name: str) -> None:
    """Remove models/NAME.py (asking first when it is not what the generator wrote) and
    the variant's figures; with one variant left, its figures move back to figures/."""
    layout = gen.layout
    if name == DEFAULT_VARIANT:
        raise MlmError("model.py is the project's own model, not a generated variant")
    target = layout.root / MODELS_DIR / f"{name}.py"
    if not target.is_file():
        raise MlmError(
            f"{target.relative_to(layout.root)} does not exist; the variants are: "
            f"{', '.join(layout.variants())}"
        )
    what = target.relative_to(layout.root).as_posix()
    current = target.read_text()
    written = gen.generated(what)
    if written != current and not gen.resolve(
        target, "", current, "", f"{what} was not written by mlm as it is; remove it?"
    ):
        return
    remaining = variants_after(layout, removed=name)
    gen.remove(target)
    folder = layout.figures_dir / name
    if folder.is_dir():
        for drawn in sorted(folder.iterdir()):
            gen.remove(drawn)
        gen.remove(folder)
    gen.forget(what)
    if len(remaining) < 2:
        gen.remove(layout.figures_dir / f"compare.{layout.config.figure_format}")
    settle(gen, remaining)


def settle(gen: Generator, variants: list[str] | None = None) -> None:
    """Move figures of the old layout (one variant: figures/; several: figures/<variant>/).

    With `pretend`, nothing moves: the moves are announced for `variants`, the variants the
    project would have had the generator run.
    """
    from mlm.stages import Session
    from mlm.stages.graphics import figure_moves, settle_figures

    layout = Layout(gen.root)
    session = Session(layout)
    moves = figure_moves(session, variants) if gen.pretend else settle_figures(session)
    for old, new in moves:
        if new is None:
            gen.act("remove", old)
        else:
            gen.act("move", old, f"to {new.relative_to(gen.root).as_posix()}")


def variants_after(
    layout: Layout, added: str | None = None, removed: str | None = None
) -> list[str]:
    """The project's variants once `added` is written and `removed` is gone, in the order
    Layout.variants() gives them (model.py's first, then by name)."""
    names = {v for v in layout.variants() if v != removed}
    if added is not None:
        names.add(added)
    return sorted(names, key=lambda v: (v != DEFAULT_VARIANT, v))


# tests/test_recovery.py ------------------------------------------------------------------------


def simulate_arguments(root: Path) -> dict[str, float]:
    """The numeric keyword defaults of data.py's simulate(), read from its code."""
    path = root / "data.py"
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError) as exc:
        raise MlmError(f"data.py cannot be read: {exc}") from None
    node = _function_node(tree, "simulate")
    if node is None:
        raise MlmError(
            "data.py has no simulate(rng, ...); `mlm generate test` checks that the model "
            "recovers the values simulate() makes its data from (see `mlm new`'s data.py)"
        )
    args = node.args.args + node.args.kwonlyargs
    defaults = [None] * (len(node.args.args) - len(node.args.defaults)) + list(node.args.defaults)
    defaults += list(node.args.kw_defaults)
    found = {}
    for arg, default in zip(args, defaults, strict=True):
        if isinstance(default, ast.Constant) and type(default.value) in (int, float):
            found[arg.arg] = default.value
    return found


def generate_test(gen: Generator, variant: str | None = None) -> Path:
    """tests/test_recovery.py (test_recovery_NAME.py for a variant): fit the model to
    data.simulate()'s data and check each parameter simulate() sets is recovered."""
    layout = gen.layout
    variant = layout.chosen([variant])[0] if variant else layout.variants()[0]
    arguments = simulate_arguments(layout.root)
    facts = model_facts(layout, variant)
    truth = {k: v for k, v in arguments.items() if k in facts.parameters}
    if not truth:
        raise MlmError(
            f"none of simulate()'s arguments ({', '.join(arguments) or 'none with a number'}) "
            f"names a parameter of {layout.model_file(variant)} "
            f"({', '.join(facts.parameters)}); give simulate() a keyword argument per "
            "parameter to recover"
        )
    module = "model" if variant == DEFAULT_VARIANT else f"models.{variant}"
    suffix = "" if variant == DEFAULT_VARIANT else f"_{variant}"
    target = layout.root / "tests" / f"test_recovery{suffix}.py"
    text = render(
        layout.root,
        "test_recovery.py",
        module=module,
        model_file=layout.model_file(variant),
        truth=truth,
        variant=variant,
        seed=layout.seed,
    )
    conftest = layout.root / "tests" / "conftest.py"
    if not conftest.exists():
        conftest_text = render(layout.root, "conftest.py")
        if gen.write(conftest, conftest_text):
            gen.remember("tests/conftest.py", conftest_text)
    if gen.write(target, text):
        gen.remember(target.relative_to(layout.root).as_posix(), text)
    return target


def destroy_test(gen: Generator, variant: str | None = None) -> None:
    """Remove what `generate test` wrote (asking first when it was edited since)."""
    layout = gen.layout
    variant = variant or layout.variants()[0]
    suffix = "" if variant == DEFAULT_VARIANT else f"_{variant}"
    target = layout.root / "tests" / f"test_recovery{suffix}.py"
    what = target.relative_to(layout.root).as_posix()
    if not target.is_file():
        raise MlmError(f"{what} does not exist")
    current = target.read_text()
    if gen.generated(what) != current and not gen.resolve(
        target, "", current, "", f"{what} was not written by mlm as it is; remove it?"
    ):
        return
    gen.remove(target)
    gen.forget(what)


# mlm new: a git repository -----------------------------------------------------------------


def init_git(root: Path) -> str:
    """`git init` in a new project (its .gitignore keeps .mlm/ out) and a first commit of
    the code as mlm wrote it, so that an edit can be undone (`git checkout fit.py`); what
    was done, in words.

    The data are not committed: they may be private, and whether they belong in the
    repository is the user's call (`git add data`). Nothing is done inside an existing
    repository's work tree (the project is a folder of it) or without git; without a git
    identity (user.name, user.email) the repository is made but not committed to. The
    words say which.
    """
    import subprocess

    git = shutil.which("git")
    if git is None:
        return "git not found: no repository initialised (run `git init` later)"
    inside = subprocess.run(
        [git, "rev-parse", "--is-inside-work-tree"],
        cwd=root.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    if inside.returncode == 0 and inside.stdout.strip() == "true":
        return "inside a git repository already: no new one initialised"
    done = subprocess.run(
        [git, "init", "--quiet", str(root)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return f"git init failed: {done.stderr.strip()}"
    code = [p.name for p in sorted(root.iterdir()) if p.name not in (".git", "data")]
    failed = None
    for command in (
        ["add", "--", *code],
        ["commit", "--quiet", "-m", "mlm new: the project as mlm wrote it"],
    ):
        step = subprocess.run(
            [git, *command], cwd=root, capture_output=True, text=True, check=False
        )
        if step.returncode != 0:
            lines = (step.stderr or step.stdout).strip().splitlines()
            failed = lines[-1] if lines else f"git {command[0]} failed"
            break
    if failed is not None:
        return (
            f"initialised a git repository (.mlm/ is git-ignored); no first commit ({failed}): "
            "commit the code yourself"
        )
    data = ""
    if (root / "data").exists():
        data = " (data/ is not committed: `git add data` if it belongs there)"
    return f"initialised a git repository with a first commit of the code{data}"
