"""Why `mlm check` failed, from the trace: funnel, ridge, too few draws, chains that disagree.

`diagnose(idata, failures, model_path, fit_path)` looks at the draws behind the failed checks
and returns findings. Each names the worst parameters, the kind of trouble, the numbers that
show it, and the change that matches it, with the line of model.py or fit.py it applies to
(found by parsing those files, never by running them):

- funnel: divergent draws sit at small values of a group SD (their values ranked among all
  draws). Centred group effects on it: non-centre them; non-centred already: raise
  target_accept, or centre them if the groups are informative.
- ridge: low ESS where the parameter is strongly correlated with another one, often the
  intercept with a predictor far from 0 or with the mean of a group's effects. Centre the
  predictor, centre the group effects on the intercept, or let nutpie adapt a low-rank mass
  matrix in fit.py.
- too_few_draws: low ESS although each draw is worth a fair share of an independent one, and
  no divergence or correlation explains it: more draws, this many, on fit.py's pm.sample line.
- slow_mixing: low ESS per draw with no correlation to blame: more draws, or a low-rank mass
  matrix.
- multimodal / too_short: r_hat above the threshold, told apart by whether each chain is
  stable on its own (then the chains found different modes) or still drifting.
- energy, tree_depth, divergences: the parameters most tied to the failure, with the line.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlm.config import CHECK_DEFAULTS

# |correlation| above which two parameters form a ridge the diagonal mass matrix cannot follow
RIDGE_CORRELATION = 0.75
# ESS per draw at or above which low ESS is just too few draws (Stan's NUTS is often 0.3-1)
HEALTHY_EFFICIENCY = 0.1
# divergent draws whose mean rank among all draws of a group SD is below this: a funnel
FUNNEL_RANK = 0.35
# group effects whose posterior SD is below this share of their group SD: informative groups
INFORMATIVE_SHARE = 0.5
SCALE_DISTRIBUTIONS = {
    "HalfNormal",
    "HalfCauchy",
    "HalfStudentT",
    "Exponential",
    "Gamma",
    "InverseGamma",
    "LogNormal",
    "HalfFlat",
    "Weibull",
}
SAMPLE_DIMS = ("chain", "draw")


@dataclass(frozen=True)
class Finding:
    """One diagnosis: what is wrong with which parameters, and the change that fixes it."""

    kind: str  # funnel, ridge, too_few_draws, slow_mixing, multimodal, too_short, ...
    checks: tuple[str, ...]  # the failed checks it explains (r_hat, ess_bulk, ...)
    parameters: tuple[str, ...]  # the parameters it is about, worst first
    evidence: str  # the numbers, in words
    fix: str  # what to change
    file: str | None = None  # "model.py", "models/wide.py" or "fit.py"
    line: int | None = None  # 1-based line of `file` the fix applies to
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.file and self.line else (self.file or "")

    def message(self) -> str:
        where = f" [{self.where}]" if self.where else ""
        return f"{self.kind} ({', '.join(self.parameters)}): {self.evidence}. {self.fix}{where}"


# ---------------------------------------------------------------------------------------
# Reading model.py and fit.py


@dataclass
class Variable:
    """A PyMC variable created in model.py: `py = pm.Dist("name", ...)`."""

    name: str
    py: str  # the Python name it is bound to
    dist: str  # Normal, HalfNormal, Deterministic, LKJCholeskyCov, ...
    line: int
    deps: set[str]  # model variables its arguments use (transitively, through Python names)
    sigma_deps: set[str]  # model variables its sigma argument uses (a centred group effect)
    mu_deps: set[str]
    dims: bool  # created with dims= or shape=
    dims_text: str = ""  # its dims= (or shape=) as written: '"school"', '("g", "g_effect")'
    mu_text: str = ""  # its mu as written (a Normal's)


class ModelSource:
    """What the diagnosis needs from model.py: where each variable is made and from what."""

    def __init__(self, path: Path | None, label: str | None = None):
        self.path = path
        self.label = label or (path.name if path else "model.py")
        self.variables: dict[str, Variable] = {}
        self.columns: dict[str, tuple[str, int]] = {}  # Python name -> (data column, line)
        self.uses: dict[str, int] = {}  # Python name -> first line it is used in an expression
        self._text = ""
        if path is None or not path.is_file():
            return
        try:
            self._text = path.read_text()
            tree = ast.parse(self._text)
        except SyntaxError:
            return
        self._read(tree)

    def _written(self, node: ast.AST | None) -> str:
        """`node`'s text as model.py writes it (its quotes), '' for None."""
        if node is None:
            return ""
        return ast.get_source_segment(self._text, node) or ast.unparse(node)

    def _read(self, tree: ast.AST) -> None:
        py_deps: dict[str, set[str]] = {}  # Python name -> model variables it depends on

        def names_in(node: ast.AST | None) -> set[str]:
            found: set[str] = set()
            if node is None:
                return found
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name):
                    found |= py_deps.get(sub.id, set())
            return found

        for node in ast.walk(tree):
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
                node = ast.Assign(targets=[], value=node.value, lineno=node.lineno)
            if not isinstance(node, ast.Assign):
                continue
            targets = []
            for target in node.targets:
                if isinstance(target, ast.Name):
                    targets.append(target.id)
                elif isinstance(target, ast.Tuple):
                    targets += [e.id for e in target.elts if isinstance(e, ast.Name)]
            value = node.value
            column = _data_column(value)
            if column and len(targets) == 1:
                self.columns[targets[0]] = (column, node.lineno)
            call = value if isinstance(value, ast.Call) else None
            dist = _pm_call(call) if call is not None else None
            if call is not None and dist and call.args and _is_str(call.args[0]):
                name = call.args[0].value
                rest = call.args[1:]
                keywords = {k.arg: k.value for k in call.keywords if k.arg}
                deps = set().union(*(names_in(a) for a in rest)) if rest else set()
                for k in call.keywords:
                    if k.arg not in ("dims", "shape", "observed"):
                        deps |= names_in(k.value)
                sigma = keywords.get("sigma", rest[1] if len(rest) > 1 else None)
                mu = keywords.get("mu", rest[0] if rest else None)
                variable = Variable(
                    name,
                    targets[0] if targets else name,
                    dist,
                    node.lineno,
                    deps,
                    names_in(sigma) if dist in ("Normal", "StudentT") else set(),
                    names_in(mu) if dist in ("Normal", "StudentT") else set(),
                    "dims" in keywords or "shape" in keywords,
                    self._written(
                        next((keywords[k] for k in ("dims", "shape") if k in keywords), None)
                    ),
                    self._written(mu) if dist in ("Normal", "StudentT") else "",
                )
                if "observed" in keywords:  # the likelihood: not a parameter
                    continue
                self.variables.setdefault(name, variable)
                for target in targets:
                    py_deps[target] = {name} | deps
            else:
                inherited = names_in(value)
                for target in targets:
                    py_deps[target] = inherited
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                line = self.uses.get(node.id)
                if line is None or node.lineno < line:
                    self.uses[node.id] = node.lineno
        self._py_deps = py_deps

    # -- questions about the model

    def variable(self, name: str) -> Variable | None:
        return self.variables.get(_base(name))

    def line_of(self, name: str) -> int | None:
        var = self.variable(name)
        return var.line if var else None

    def ancestors(self, name: str) -> set[str]:
        """Model variables `name` is computed from (transitively)."""
        seen: set[str] = set()
        todo = [_base(name)]
        while todo:
            var = self.variables.get(todo.pop())
            if var is None:
                continue
            for dep in var.deps - seen:
                seen.add(dep)
                todo.append(dep)
        return seen

    def related(self, a: str, b: str) -> bool:
        """One is computed from the other (a Deterministic of it): correlated by construction."""
        a, b = _base(a), _base(b)
        return a in self.ancestors(b) or b in self.ancestors(a)

    def group_terms(self) -> list[GroupTerm]:
        """Group effects and their SDs: centred `pm.Normal(name, mu, sd, dims=g)` or
        `pm.MvNormal(name, mu, chol=chol, dims=...)`, or non-centred
        `pm.Deterministic(name, z * sd)` or `z @ chol.T` with z a standard normal."""
        terms = []
        scales = {n for n, v in self.variables.items() if self._is_scale(v)}
        lkj = {n for n, v in self.variables.items() if v.dist.startswith("LKJ")}
        # A partly centred intercept and slope: centred intercepts whose SD comes from an
        # LKJ factor, and the effects u computed from them and the slopes' z.
        partial = {
            var.name: u
            for var in self.variables.values()
            if var.dist == "Normal" and var.dims and var.sigma_deps & lkj
            for u in self.variables.values()
            if u.dist == "Deterministic" and var.name in u.deps and u.name.startswith("u_")
        }
        for a, u in partial.items():
            chol = self._chol(u)
            terms.append(
                GroupTerm(
                    u.name,
                    sorted(self._chol_sds(u) | {chol}),
                    centred=True,
                    line=self.variables[a].line,
                    z=None,
                    chol=chol,
                    dims=u.dims_text,
                    partial=a,
                )
            )
        done = set(partial) | {u.name for u in partial.values()}
        for var in self.variables.values():
            if var.name in done:
                continue
            if var.dist in ("Normal", "StudentT") and var.dims and var.sigma_deps & scales:
                sds = sorted(var.sigma_deps & scales)
                terms.append(
                    GroupTerm(
                        var.name, sds, centred=True, line=var.line, z=None, dims=var.dims_text
                    )
                )
            elif var.dist == "MvNormal" and var.dims and (chol := self._chol(var)):
                sds = sorted(self._chol_sds(var)) or [chol]
                terms.append(
                    GroupTerm(
                        var.name,
                        sds,
                        centred=True,
                        line=var.line,
                        z=None,
                        chol=chol,
                        dims=var.dims_text,
                    )
                )
            elif var.dist == "Deterministic":
                zs = [
                    d
                    for d in var.deps
                    if (v := self.variables.get(d)) is not None
                    and v.dist == "Normal"
                    and v.dims
                    and not (v.deps & scales)
                ]
                chol_sds = self._chol_sds(var)
                lkj = {d for d in var.deps if self.variables[d].dist.startswith("LKJ")}
                # an LKJ factor stands for its SDs when they are stored (sigma_g)
                sds = sorted((var.deps & scales) - (lkj if chol_sds else set()) | chol_sds)
                if zs and sds:
                    terms.append(
                        GroupTerm(
                            var.name,
                            sds,
                            False,
                            var.line,
                            z=zs[0],
                            chol=self._chol(var),
                            dims=var.dims_text,
                        )
                    )
        return terms

    def _chol(self, var: Variable) -> str | None:
        """The Python name of the LKJ Cholesky factor `var` is built from, if any."""
        for dep in sorted(var.deps):
            chol = self.variables.get(dep)
            if chol is not None and chol.dist.startswith("LKJ"):
                return chol.py
        return None

    def _chol_sds(self, var: Variable) -> set[str]:
        """The stored SDs of an LKJ Cholesky factor `var` uses (sigma_g Deterministic)."""
        chols = {d for d in var.deps if (v := self.variables.get(d)) and v.dist.startswith("LKJ")}
        return {
            n
            for n, v in self.variables.items()
            if v.dist == "Deterministic" and v.deps & chols and n.startswith(("sigma", "sd"))
        }

    def _is_scale(self, var: Variable) -> bool:
        if var.dist in SCALE_DISTRIBUTIONS:
            return True
        if var.dist == "Deterministic" and var.name.startswith(("sigma", "sd", "tau")):
            return True
        return var.dist.startswith("LKJ")

    def column_line(self, name: str) -> tuple[str, int] | None:
        """For b_x: the line reading column x from the data (where to centre it)."""
        var = self.variable(name)
        if var is None:
            return None
        # the Python names used with var in the mean: b_x * x_ -> x_ -> pm.Data(x) -> x
        stem = _base(name).removeprefix("b_")
        for py, (column, line) in self.columns.items():
            if column == stem or py == stem:
                return column, line
        return None


@dataclass
class GroupTerm:
    effect: str  # u_school (non-centred Deterministic) or the centred variable
    sds: list[str]
    centred: bool
    line: int
    z: str | None
    chol: str | None = None  # correlated effects: the Cholesky factor's Python name
    dims: str = ""  # the effects' dims as model.py writes them ('"school"')
    # partly centred (an intercept and a slope): the centred intercepts' variable (a_g)
    partial: str | None = None

    def centred_words(self, sd: str) -> str:
        """What is centred, for advice: the effects, or a partly centred term's intercepts."""
        if self.partial:
            return f"{self.effect}'s intercepts ({self.partial}) are centred, with SDs from {sd}"
        return f"{self.effect} is centred on {sd}"

    def _dims(self) -> str:
        return f"dims={self.dims}" if self.dims else "dims=..."

    def non_centred_form(self, mu: str, sd: str) -> str:
        """The lines that non-centre this term, for advice (`mu`: Python, as in model.py)."""
        dims = self._dims()
        if self.chol:
            return (
                f'z_{self.effect} = pm.Normal("z_{self.effect}", 0, 1, {dims}) and '
                f'{self.effect} = pm.Deterministic("{self.effect}", z_{self.effect} @ '
                f"{self.chol}.T, {dims})"
                + (
                    f", in place of the partly centred lines from the comment above "
                    f"{self.partial} to {self.effect}"
                    if self.partial
                    else ""
                )
            )
        shift = "" if mu in ("", "0") else f"{mu} + "
        return (
            f'z_{self.effect} = pm.Normal("z_{self.effect}", 0, 1, {dims}) and '
            f'{self.effect} = pm.Deterministic("{self.effect}", {shift}z_{self.effect} * '
            f"{sd}, {dims})"
        )

    def centred_form(self, sd: str) -> str:
        """The line that centres this term, for advice."""
        dims = self._dims()
        if self.chol:
            return (
                f'{self.effect} = pm.MvNormal("{self.effect}", mu=0, chol={self.chol}, '
                f"{dims}) in place of z @ {self.chol}.T"
            )
        return (
            f'{self.effect} = pm.Normal("{self.effect}", mu=0, sigma={sd}, {dims}) in place of '
            f"z * {sd}"
        )


def sampler_settings(idata) -> dict[str, Any]:
    """The mass matrix adaptation and target_accept a trace was sampled with, as nutpie
    records them ({} for a sampler that records neither)."""
    import json

    try:
        recorded = idata["sample_stats"].attrs.get("inference_library_settings", "{}")
        settings = json.loads(recorded)
        options = settings.get("settings", {}).get("adapt_options", {})
        target = options.get("step_size_settings", {}).get("target_accept")
        adaptation = settings.get("adaptation")
    except (KeyError, TypeError, ValueError, AttributeError):
        return {}
    used: dict[str, Any] = {}
    if isinstance(adaptation, str):
        used["adaptation"] = adaptation
    if isinstance(target, int | float) and not isinstance(target, bool):
        used["target_accept"] = target
    return used


class FitSource:
    """Where fit.py calls the sampler, and with what."""

    def __init__(self, path: Path | None, label: str = "fit.py"):
        self.label = label
        self.line: int | None = None
        self.settings: dict[str, Any] = {}
        self.low_rank = False  # nutpie's low-rank mass matrix asked for (or, from the trace, used)
        # The line where fit.py chooses the mass matrix at run time (low rank or not by the
        # model's size, as the template's does), if it does.
        self.chooses: int | None = None
        # Where a target_accept is written as a number in a call other than the sampler's
        # own (the template's fit.py passes it to its draw(), 0.99 when the first try
        # diverged): line -> value, so that advice names the line to change.
        self.targets: dict[int, float] = {}
        if path is None or not path.is_file():
            return
        try:
            tree = ast.parse(path.read_text())
        except SyntaxError:
            return
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                for k in node.keywords:
                    if (
                        k.arg == "target_accept"
                        and isinstance(k.value, ast.Constant)
                        and isinstance(k.value.value, int | float)
                    ):
                        self.targets[k.value.lineno] = k.value.value
            if isinstance(node, ast.IfExp | ast.If) and any(
                isinstance(sub, ast.Constant) and sub.value == "low_rank" for sub in ast.walk(node)
            ):
                if self.chooses is None or node.lineno < self.chooses:
                    self.chooses = node.lineno
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "sample"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in ("pm", "pymc", "nutpie")
            ):
                if self.line is None or node.lineno < self.line:
                    self.line = node.lineno
                    self.settings = {
                        k.arg: k.value.value
                        for k in node.keywords
                        if k.arg and isinstance(k.value, ast.Constant)
                    }
                    self.low_rank = any(
                        k.arg in ("nuts", "nuts_sampler_kwargs", "adaptation")
                        and any(
                            isinstance(v, ast.Constant) and v.value == "low_rank"
                            for v in ast.walk(k.value)
                        )
                        for k in node.keywords
                    )

    def read_trace(self, idata) -> None:
        """What fit.py chose at run time, as the trace records it (nutpie records its
        settings): the mass matrix, for a fit.py that chooses it by the model's size, and
        target_accept, for one that does not pass it to pm.sample as a number (the
        template's samples again at 0.99 when the first try diverged). A fit.py that names
        either is taken at its word: it is what the next run uses."""
        used = sampler_settings(idata)
        if self.chooses is not None and "adaptation" in used:
            self.low_rank = used["adaptation"] == "low_rank"
        if "target_accept" not in self.settings and "target_accept" in used:
            self.settings["target_accept"] = used["target_accept"]

    def target_line(self, value) -> int | None:
        """The line that writes target_accept=value outside pm.sample's own call, if one
        does (the last such line: the template's second try)."""
        lines = [line for line, v in self.targets.items() if v == value and line != self.line]
        return max(lines) if lines else None

    def low_rank_call(self) -> str | None:
        """How to ask for the low-rank mass matrix, for advice when it was not used; None
        when fit.py chose the diagonal one for the model's size (its adaptation grows with
        the free parameters: a new user's 584-parameter Poisson GLMM took 542 s on it
        against 33 s, with worse ESS), so that the advice does not undo that choice."""
        if self.chooses is not None:
            return None
        return 'pm.sample(..., nuts={"adaptation": "low_rank"})'


def _pm_call(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        if func.value.id in ("pm", "pymc"):
            return func.attr
    return None


def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _data_column(value: ast.AST) -> str | None:
    """`data["x"]...` (with any method calls after it): the column name."""
    node = value
    while True:
        if isinstance(node, ast.Subscript):
            if isinstance(node.value, ast.Name) and node.value.id == "data":
                return node.slice.value if _is_str(node.slice) else None
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute):
            node = node.value
        else:
            return None


def _base(label: str) -> str:
    return label.split("[", 1)[0].removeprefix("mean of ")


# ---------------------------------------------------------------------------------------
# Reading the trace


class Draws:
    """The posterior as scalar columns (chain, draw), labelled as az.summary does."""

    def __init__(self, idata):
        import numpy as np

        posterior = idata["posterior"]
        self.columns: dict[str, np.ndarray] = {}
        self.group_means: dict[str, np.ndarray] = {}
        for name, values in posterior.data_vars.items():
            other = [d for d in values.dims if d not in SAMPLE_DIMS]
            array = values.transpose(*SAMPLE_DIMS, *other).to_numpy()
            if not np.issubdtype(array.dtype, np.number):
                continue
            array = array.astype(float)
            chains, draws = array.shape[:2]
            if not other:
                self.columns[str(name)] = array
                continue
            coords = [values[d].to_numpy() for d in other]
            flat = array.reshape(chains, draws, -1)
            for i, index in enumerate(np.ndindex(*array.shape[2:])):
                label = ", ".join(str(coords[k][j]) for k, j in enumerate(index))
                self.columns[f"{name}[{label}]"] = flat[:, :, i]
            # the mean over the first (group) dimension, per level of the others
            if array.shape[2] >= 3:
                means = array.mean(axis=2).reshape(chains, draws, -1)
                rest = [values[d].to_numpy() for d in other[1:]]
                for i, index in enumerate(np.ndindex(*array.shape[3:])):
                    label = ", ".join(str(rest[k][j]) for k, j in enumerate(index))
                    key = f"mean of {name}" + (f"[:, {label}]" if label else "")
                    self.group_means[key] = means[:, :, i]
        self.constant: dict[str, np.ndarray] = {}
        if "constant_data" in idata.children:
            for name, values in idata["constant_data"].data_vars.items():
                if np.issubdtype(values.dtype, np.number):
                    self.constant[str(name)] = values.to_numpy().astype(float)
        self.slopes: dict[str, list[str]] = {}  # group effect -> its columns (Intercept, x)
        for name, values in posterior.data_vars.items():
            other = [d for d in values.dims if d not in SAMPLE_DIMS]
            if len(other) == 2:
                self.slopes[str(name)] = [str(c) for c in values[other[1]].to_numpy()]
        stats = idata["sample_stats"] if "sample_stats" in idata.children else None
        self.diverging = None
        self.energy = None
        if stats is not None and "diverging" in stats:
            self.diverging = stats["diverging"].transpose(*SAMPLE_DIMS).to_numpy().astype(bool)
        if stats is not None and "energy" in stats:
            self.energy = stats["energy"].transpose(*SAMPLE_DIMS).to_numpy().astype(float)
        first = next(iter(self.columns.values()), None)
        self.chains, self.draws = first.shape if first is not None else (0, 0)
        self._diag: dict[str, dict[str, float]] = {}

    def varying(self, label: str) -> bool:
        import numpy as np

        values = self.columns.get(label, self.group_means.get(label))
        return values is not None and bool(np.ptp(values) > 1e-12 * (1 + np.abs(values).max()))

    def diagnostics(self, label: str) -> dict[str, float]:
        """Bulk and tail ESS and r_hat of one column (NaN for a constant), as az.summary."""
        import arviz as az
        import xarray as xr

        if not self._diag:
            labels = [c for c in self.columns if self.varying(c)]
            data = xr.Dataset(
                {f"v{i}": (SAMPLE_DIMS, self.columns[c]) for i, c in enumerate(labels)}
            )
            if labels:
                bulk = az.ess(data, method="bulk")
                tail = az.ess(data, method="tail")
                rhat = az.rhat(data)
            for i, c in enumerate(labels):
                key = f"v{i}"
                self._diag[c] = {
                    "ess_bulk": float(bulk[key]),
                    "ess_tail": float(tail[key]),
                    "r_hat": float(rhat[key]),
                }
        return self._diag.get(
            label, {"ess_bulk": math.nan, "ess_tail": math.nan, "r_hat": math.nan}
        )

    def worst(self, check: str, limit: float, count: int = 3) -> list[tuple[str, float]]:
        """The columns failing `check` (ess_bulk, ess_tail, r_hat), worst first."""
        rows = []
        for label in self.columns:
            value = self.diagnostics(label)[check]
            if math.isnan(value):
                continue
            bad = value > limit if check == "r_hat" else value < limit
            if bad:
                rows.append((label, value))
        rows.sort(key=lambda r: -r[1] if check == "r_hat" else r[1])
        return rows[:count]

    def correlation(self, a: str, b: str) -> float:
        import numpy as np

        x = self.columns.get(a, self.group_means.get(a)).reshape(-1)
        y = self.columns.get(b, self.group_means.get(b)).reshape(-1)
        if np.std(x) == 0 or np.std(y) == 0:
            return 0.0
        return float(np.corrcoef(x, y)[0, 1])


# ---------------------------------------------------------------------------------------
# The diagnosis


def diagnose(
    idata,
    failures,
    model_path: str | Path | None = None,
    fit_path: str | Path | None = None,
    limits: dict[str, float] | None = None,
    model_label: str | None = None,
    fit_label: str = "fit.py",
) -> list[Finding]:
    """Findings that explain the failed checks `failures` (Check rows or check names).

    `model_path`, `fit_path`: the files the trace was sampled with (the fixes name their
    lines); `limits`: the thresholds (mlm.check.DEFAULT_THRESHOLDS when not given);
    `model_label`, `fit_label`: how the files are named in the messages (default: the
    file's name, "fit.py").
    """
    limits = {**CHECK_DEFAULTS, **(limits or {})}
    failed = []
    for item in failures:
        name = item if isinstance(item, str) else item.name
        if isinstance(item, str) or not item.passed:
            failed.append(name)
    if not failed:
        return []
    model_path = Path(model_path) if model_path else None
    fit_path = Path(fit_path) if fit_path else None
    model = ModelSource(model_path, model_label)
    fit = FitSource(fit_path, fit_label)
    fit.read_trace(idata)
    draws = Draws(idata)
    if not draws.columns:
        return []
    terms = model.group_terms()
    if terms:  # means over groups of group effects only (not over a factor's levels)
        keep = {t.effect for t in terms} | {t.z for t in terms if t.z}
        draws.group_means = {k: v for k, v in draws.group_means.items() if _base(k) in keep}
    found: list[Finding] = []
    explained: set[str] = set()

    stuck = _stuck(draws, model, fit, failed)
    if stuck is not None:  # chains that never moved explain every other failure too
        return [stuck]
    if "divergences" in failed or "e_bfmi" in failed:
        funnel = _funnel(draws, model, fit)
        if funnel is not None:
            found.append(funnel)
            explained |= set(funnel.checks)
        if funnel is not None:  # low ESS and r_hat of a funnel's parameters follow from it
            funnel = _absorb(funnel, draws, limits, [c for c in failed if c in ABSORBED])
            found[-1] = funnel
            explained |= set(funnel.checks)
    if "divergences" in failed and "divergences" not in explained:
        found.append(_divergences(draws, model, fit))
        explained.add("divergences")

    ess_checks = [c for c in ("ess_bulk", "ess_tail") if c in failed and c not in explained]
    ridges = []
    if ess_checks or "tree_depth" in failed or ("r_hat" in failed and "r_hat" not in explained):
        ridges = _ridges(draws, model, fit, limits, ess_checks, "tree_depth" in failed)
        found += ridges
        for ridge in ridges:
            explained |= set(ridge.checks)
    if "r_hat" in failed and "r_hat" not in explained:
        chains = _r_hat(draws, model, fit, limits, ridges)
        if chains.kind == "multimodal":  # separated chains also explain the low ESS
            chains = _absorb(chains, draws, limits, [c for c in ess_checks if c not in explained])
        found.append(chains)
        explained |= set(chains.checks)
    left = [c for c in ess_checks if c not in explained]
    if left:
        found.append(_few_draws(draws, model, fit, limits, left))
        explained |= set(left)
    if "e_bfmi" in failed and "e_bfmi" not in explained:
        energy = _energy(draws, model)
        if energy is not None:
            found.append(energy)
    if "tree_depth" in failed and "tree_depth" not in explained:
        found.append(
            Finding(
                "tree_depth",
                ("tree_depth",),
                ("(no strongly correlated pair)",),
                "trajectories hit the maximum tree depth without one strong pairwise "
                "correlation: the posterior is badly scaled",
                "raise max_treedepth"
                if fit.low_rank or fit.low_rank_call() is None
                else f"let nutpie adapt a low-rank mass matrix: {fit.low_rank_call()}, or raise "
                "max_treedepth",
                fit.label,
                fit.line,
            )
        )
    return found


ABSORBED = ("ess_bulk", "ess_tail", "r_hat")
STUCK_MOVES = 0.05  # a chain moving on fewer of its draws than this never left its start


def _stuck(draws: Draws, model: ModelSource, fit: FitSource, failed: list[str]) -> Finding | None:
    """Chains that (almost) never moved: every parameter the same from draw to draw.

    nutpie starts each chain at the prior's centre plus a uniform jitter of +-1 on every
    parameter's unconstrained scale. A parameter whose prior is much narrower than 1 (a
    slope per unit of a predictor measured in hundreds) can start where the log density
    is extreme; the step size then adapts to nothing and the chain stays put.
    """
    import numpy as np

    labels = [label for label in draws.columns if draws.varying(label)]
    if not labels or draws.draws < 2:
        return None
    stacked = np.stack([draws.columns[label] for label in labels])  # labels x chains x draws
    moves = (np.diff(stacked, axis=2) != 0).any(axis=0).mean(axis=1)  # per chain
    frozen = [c for c in range(draws.chains) if moves[c] < STUCK_MOVES]
    if not frozen:
        return None
    moving = [c for c in range(draws.chains) if c not in frozen]
    named: list[str] = []
    if moving:  # the parameters the frozen chains hold farthest from the moving ones
        centre = stacked[:, moving].mean(axis=(1, 2))
        spread = stacked[:, moving].std(axis=(1, 2)) + 1e-300
        away = np.abs(stacked[:, frozen].mean(axis=2) - centre[:, None]).max(axis=1) / spread
        named = [labels[i] for i in np.argsort(-away)[:3]]
    slopes = [label for label in named if model.column_line(label)]
    which = ", ".join(str(c + 1) for c in frozen)
    diverging = int(draws.diverging[frozen].sum()) if draws.diverging is not None else None
    evidence = (
        f"chain{'s' if len(frozen) > 1 else ''} {which} of {draws.chains} never moved from "
        f"where {'they' if len(frozen) > 1 else 'it'} started (every parameter changed on "
        f"under {STUCK_MOVES:.0%} of the draws"
        + (f"; {diverging} divergences there" if diverging else "")
        + "): the jittered start landed where the log density is extreme, so r_hat, ESS "
        "and divergences say nothing else"
        + (f"; farthest off: {', '.join(named)}" if named else "")
    )
    if slopes:
        column = model.column_line(slopes[0])[0]
        fix = (
            f"put {column} on a unit scale, so that a start +-1 away is a small step for "
            f"{_base(slopes[0])}: scale({column}) in the formula, or divide the column by its "
            f"SD where {model.label} reads it"
        )
        return Finding(
            "stuck",
            tuple(failed),
            tuple(named),
            evidence,
            fix,
            model.label,
            model.column_line(slopes[0])[1],
        )
    fix = (
        "look for a parameter whose prior is far narrower than 1 (a slope on a predictor "
        f"measured in large units) in {model.label}, and rescale what it multiplies so its "
        "prior SD is about 1"
    )
    return Finding("stuck", tuple(failed), tuple(named), evidence, fix, fit.label, fit.line)


def _absorb(funnel: Finding, draws: Draws, limits: dict[str, float], checks) -> Finding:
    """The funnel explains these failed checks too: say so with their worst numbers."""
    from dataclasses import replace

    if not checks:
        return funnel
    parts = []
    for check in checks:
        worst = draws.worst(check, limits[check], count=1)
        if worst:
            label, value = worst[0]
            parts.append(f"{check.replace('_', ' ')} {value:.3g} at {label}")
    evidence = funnel.evidence + (f"; this also explains {', '.join(parts)}" if parts else "")
    return replace(funnel, checks=(*funnel.checks, *checks), evidence=evidence)


def _sample_line(fit: FitSource) -> str:
    return f"pm.sample in {fit.label}" + (f" line {fit.line}" if fit.line else "")


def _target_accept(fit: FitSource, where: bool = False) -> str:
    """Advice to raise target_accept above what fit.py has, at the line that sets it; with
    `where`, naming pm.sample's line when no other line sets it."""
    current = fit.settings.get("target_accept")
    now = f" (now {current})" if current is not None else ""
    line = fit.target_line(current)
    if isinstance(current, int | float) and current >= 0.99:
        # never the value it has already (a new user's Assay fit was told 0.99 at 0.99)
        higher, more = 0.999, ", slower, and past 0.99 it seldom removes the last ones"
    else:
        higher = 0.99 if isinstance(current, int | float) and current >= 0.95 else 0.95
        more = ""
    if line:  # written in a call of fit.py's own, not in pm.sample's
        return f"raise target_accept{now}: target_accept={higher} at {fit.label} line {line}{more}"
    at = f" ({_sample_line(fit)})" if where else ""
    return f"raise target_accept{now}: pm.sample(..., target_accept={higher}){more}{at}"


def _funnel(draws: Draws, model: ModelSource, fit: FitSource) -> Finding | None:
    """Divergent draws concentrated at small values of a group SD."""
    import numpy as np

    if draws.diverging is None or not draws.diverging.any():
        return None
    mask = draws.diverging.reshape(-1)
    terms = model.group_terms()
    sds = {sd for term in terms for sd in term.sds}
    candidates = []
    for label, values in draws.columns.items():
        flat = values.reshape(-1)
        if not draws.varying(label) or flat.min() <= 0:
            continue
        if sds and _base(label) not in sds:
            continue
        if not sds and not _base(label).startswith(("sigma", "sd", "tau")):
            continue
        ranks = (np.argsort(np.argsort(flat)) + 0.5) / flat.size
        rank = float(ranks[mask].mean())
        logs = np.log(flat)
        shift = float((logs[mask].mean() - logs[~mask].mean()) / (logs[~mask].std() or 1))
        candidates.append(
            (rank, label, shift, float(np.median(flat[mask])), float(np.median(flat)))
        )
    if not candidates:
        return None
    rank, label, shift, div_median, median = min(candidates)
    if rank >= FUNNEL_RANK:
        return None
    count = int(mask.sum())
    term = next((t for t in terms if _base(label) in t.sds), None)
    numbers = {
        "divergences": count,
        "sd": label,
        "mean_rank": rank,
        "log_shift_sd": shift,
        "divergent_median": div_median,
        "median": median,
    }
    evidence = (
        f"{count} divergent draws sit at small {label}: their mean rank among all draws is "
        f"{rank:.2f} (0.5 if unrelated), median {div_median:.3g} against {median:.3g} overall"
    )
    parameters = (label,)
    if term is None:
        fix = (
            f"the group effects scaled by {label} are centred: non-centre them (z ~ Normal(0, 1), "
            f"effect = mean + z * {_base(label)}), and {_target_accept(fit)}"
        )
        return Finding(
            "funnel",
            ("divergences", "e_bfmi"),
            parameters,
            evidence,
            fix,
            model.label if model.line_of(label) else fit.label,
            model.line_of(label) or fit.line,
            numbers,
        )
    parameters = (label, term.effect)
    if term.partial and not label.endswith(("[Intercept]", "[0]")):
        # the funnel is at the slope's SD, and the slopes are non-centred already
        fix = (
            f"{term.effect}'s slopes are non-centred already ({model.label} line {term.line}; "
            f"its intercepts, {term.partial}, are centred); {_target_accept(fit, where=True)}"
        )
        return _funnel_finding(parameters, evidence, fix, fit.label, fit.line, numbers)
    if term.centred:
        var = model.variables[term.partial or term.effect]
        mu = var.mu_text or " + ".join(_py(model, d) for d in sorted(var.mu_deps)) or "0"
        fix = (
            f"reparameterize: {term.centred_words(_base(label))} "
            f"({model.label} line {term.line}); non-centre it: "
            f"{term.non_centred_form(mu, _base(label))}; then, if a few remain, "
            f"{_target_accept(fit, where=True)}"
        )
        return _funnel_finding(parameters, evidence, fix, model.label, term.line, numbers)
    informative = _informative(draws, term, label)
    numbers["effect_sd_share"] = informative
    if informative is not None and informative < INFORMATIVE_SHARE:
        fix = (
            f"{term.effect} is non-centred already ({model.label} line {term.line}) but its "
            f"groups are informative (posterior SD of an effect {informative:.2f} of "
            f"{_base(label)}): centre it, {term.centred_form(_base(label))}; or "
            f"{_target_accept(fit)}"
        )
        return _funnel_finding(parameters, evidence, fix, model.label, term.line, numbers)
    fix = (
        f"{term.effect} is non-centred already ({model.label} line {term.line}); "
        f"{_target_accept(fit)}, and consider a tighter prior on {_base(label)} "
        f"({model.label} line {model.line_of(label) or '?'})"
    )
    return _funnel_finding(parameters, evidence, fix, fit.label, fit.line, numbers)


def _funnel_finding(parameters, evidence, fix, file, line, numbers) -> Finding:
    """A funnel explains the divergences and the low E-BFMI it causes."""
    return Finding(
        "funnel", ("divergences", "e_bfmi"), parameters, evidence, fix, file, line, numbers
    )


def _informative(draws: Draws, term: GroupTerm, sd_label: str) -> float | None:
    """Median over groups of posterior SD of the effect / posterior mean of its SD."""
    import numpy as np

    scale = draws.columns.get(sd_label)
    if scale is None:
        return None
    level = sd_label[len(_base(sd_label)) :]  # "[Intercept]" for one column of a covariance
    shares = []
    for label, values in draws.columns.items():
        if _base(label) != term.effect:
            continue
        if level and not label.endswith(level.replace("[", ", ")) and not label.endswith(level):
            continue
        shares.append(values.std() / scale.mean())
    return float(np.median(shares)) if shares else None


def _divergences(draws: Draws, model: ModelSource, fit: FitSource) -> Finding:
    """Divergences without a funnel: the parameters whose divergent draws stand out most."""

    count = int(draws.diverging.sum()) if draws.diverging is not None else 0
    shifts = []
    if count:
        mask = draws.diverging.reshape(-1)
        for label, values in draws.columns.items():
            flat = values.reshape(-1)
            if not draws.varying(label) or mask.all():
                continue
            spread = flat[~mask].std() or 1.0
            shifts.append((abs(flat[mask].mean() - flat[~mask].mean()) / spread, label))
    shifts.sort(reverse=True)
    named = tuple(label for _, label in shifts[:3]) or ("(all)",)
    evidence = f"{count} divergent draws, not concentrated at a small group SD" + (
        "; they stand out most in "
        + ", ".join(f"{label} ({shift:.1f} SD off)" for shift, label in shifts[:3])
        if shifts
        else ""
    )
    fix = (
        f"{_target_accept(fit)}; if they persist, look at the prior and the role of "
        f"{named[0]} ({model.label} line {model.line_of(named[0]) or '?'})"
    )
    return Finding(
        "divergences",
        ("divergences",),
        named,
        evidence,
        fix,
        fit.label,
        fit.line,
        {"divergences": count, "shifts": {label: s for s, label in shifts[:3]}},
    )


def _ridges(
    draws: Draws,
    model: ModelSource,
    fit: FitSource,
    limits: dict[str, float],
    ess_checks: list[str],
    tree_depth: bool,
) -> list[Finding]:
    """Low-ESS parameters strongly correlated with another parameter or a group mean."""
    worst: list[tuple[str, float, str]] = []
    for check in ess_checks or ["ess_bulk"]:
        limit = limits[check] if ess_checks else math.inf
        for label, value in draws.worst(check, limit, count=4):
            worst.append((label, value, check))
    if not ess_checks:
        # r_hat or tree depth alone: look at the least efficient parameters
        worst = [(label, value, "ess_bulk") for label, value, _ in worst[:3]]
    total = draws.chains * draws.draws
    findings: list[Finding] = []
    pairs_seen: set[frozenset[str]] = set()
    others = [c for c in draws.columns if draws.varying(c)] + list(draws.group_means)
    for label, value, check in worst:
        best = None
        for other in others:
            if other == label or (_base(other) == _base(label) and other in draws.group_means):
                continue
            if model.related(label, other) or _trivial(label, other):
                continue
            r = draws.correlation(label, other)
            if best is None or abs(r) > abs(best[1]):
                best = (other, r)
        if best is None or abs(best[1]) < RIDGE_CORRELATION:
            continue
        other, r = best
        worst_label = label
        label, other, r = _as_group_mean(label, other, r, draws, model)
        pair = frozenset((_base(label), _base(other)))
        if pair in pairs_seen:
            for f in findings if ess_checks else ():
                if frozenset(_base(p) for p in f.parameters[:2]) == pair and check not in f.checks:
                    findings[findings.index(f)] = _with_check(f, check)
            continue
        pairs_seen.add(pair)
        efficiency = value / total if total else math.nan
        if ess_checks:
            checks = tuple(
                c for c in ess_checks if draws.diagnostics(worst_label)[c] < limits[c]
            ) or (check,)
        else:
            # Looked for as the cause of r_hat (or tree depth) while the ESS passes: the
            # ESS row shows no finding, so r_hat's finding carries this fix itself.
            checks = ()
        if tree_depth:
            checks += ("tree_depth",)
        evidence = (
            f"{check.replace('_', ' ')} {value:.0f} at {worst_label} from {total} draws "
            f"({efficiency:.2f} per draw); posterior correlation {r:+.2f} between {label} "
            f"and {other}"
        )
        fix, file, line = _ridge_fix(label, other, model, fit)
        findings.append(
            Finding(
                "ridge",
                checks,
                (label, other) + ((worst_label,) if worst_label not in (label, other) else ()),
                evidence,
                fix,
                file,
                line,
                {"ess": value, "efficiency": efficiency, "correlation": r, "pair": (label, other)},
            )
        )
    return findings


def _as_group_mean(label: str, other: str, r: float, draws: Draws, model: ModelSource):
    """Intercept against one group's effect (u_g[B] or z_g[B]): the ridge is with the mean
    of the group's effects; report that pair when its correlation is as strong."""
    for a, b in ((label, other), (other, label)):
        if not _is_intercept(a, model) or "[" not in b:
            continue
        for term in model.group_terms():
            if _base(b) in (term.effect, term.z):
                mean = f"mean of {term.effect}"
                if mean in draws.group_means:
                    r_mean = draws.correlation(a, mean)
                    if abs(r_mean) >= RIDGE_CORRELATION:
                        return a, mean, r_mean
    return label, other, r


def _with_check(finding: Finding, check: str) -> Finding:
    from dataclasses import replace

    return replace(finding, checks=(*finding.checks, check))


def _trivial(a: str, b: str) -> bool:
    """z_g and u_g of the same term, or a covariance's SD and its correlation."""
    stems = {_base(a).split("_", 1)[-1], _base(b).split("_", 1)[-1]}
    prefixes = {_base(a).split("_", 1)[0], _base(b).split("_", 1)[0]}
    return len(stems) == 1 and prefixes <= {"z", "u", "sigma", "corr", "chol", "mean of z"}


def _is_intercept(label: str, model: ModelSource) -> bool:
    base = _base(label)
    var = model.variable(base)
    return "intercept" in base.lower() or (var is not None and "intercept" in var.py.lower())


def _ridge_fix(
    label: str, other: str, model: ModelSource, fit: FitSource
) -> tuple[str, str | None, int | None]:
    if fit.low_rank:
        low_rank = f"or sample longer ({_sample_line(fit)} already adapts a low-rank mass matrix)"
    elif fit.low_rank_call() is None:
        low_rank = f"or sample longer ({_sample_line(fit)})"
    else:
        low_rank = (
            "or let nutpie adapt a low-rank mass matrix that follows the ridge: "
            f"{fit.low_rank_call()} ({_sample_line(fit)})"
        )
    pair = [label, other]
    intercept = next((p for p in pair if _is_intercept(p, model)), None)
    group = next((p for p in pair if p.startswith("mean of ")), None)
    slope = next((p for p in pair if _base(p).startswith("b_") and p != group), None)
    if intercept and group:
        term = next((t for t in model.group_terms() if t.effect == _base(group)), None)
        if term is None:
            # mean of z_g: name the term built from it
            term = next((t for t in model.group_terms() if t.z == _base(group)), None)
        line = term.line if term else model.line_of(group)
        effect = term.effect if term else _base(group)
        sd = term.sds[0] if term and term.sds else "sigma_g"
        centred = term is not None and term.centred
        dims = f"dims={term.dims}" if term is not None and term.dims else "dims=..."
        how = (
            f"the intercept and the mean of {effect} trade off (groups with many rows fix "
            f"their sum, not each): "
            + (
                f"give {effect} the intercept as its mean, {effect} = pm.Normal(..., "
                f"mu={_py(model, intercept)}, sigma={sd}, {dims}), and drop the separate "
                "intercept from mu, "
                if centred
                else f"centre the group intercepts on the intercept, a_g = pm.Normal(..., "
                f"mu={_py(model, intercept)}, sigma={sd}, {dims}) in place of "
                f"{_py(model, intercept)} + {effect} in mu (the non-centred z * {sd} keeps "
                "this ridge), "
            )
            + low_rank
        )
        return how, model.label, line
    if group and slope:
        term = next(
            (t for t in model.group_terms() if group.startswith(f"mean of {t.effect}")), None
        )
        line = term.line if term else model.line_of(group)
        how = (
            f"{_base(slope)} and the mean of the group slopes in {_base(group)} trade off: "
            f"centre the group slopes on {_base(slope)} (their mean is {_base(slope)}), " + low_rank
        )
        return how, model.label, line
    if intercept and slope:
        column = model.column_line(slope)
        if column:
            name, line = column
            how = (
                f"{_base(slope)}'s predictor {name} lies far from 0, so the intercept (the "
                f"outcome at {name} = 0) is an extrapolation tied to the slope: centre it, "
                f"{name} = {name} - C after reading it, C its mean in the data written as a "
                f"number (not .mean(): predictions for new rows must use the same centre; the "
                f"intercept becomes the outcome at {name} = C), " + low_rank
            )
            return how, model.label, line
        line = model.line_of(slope)
        how = (
            f"centre the predictor of {_base(slope)} (subtract its mean) so the intercept "
            "stops depending on the slope, " + low_rank
        )
        return how, model.label, line
    a, b = model.line_of(label), model.line_of(other)
    lines = ", ".join(
        f"{_base(p)} at {model.label} line {n}" for p, n in ((label, a), (b and other, b)) if n
    )
    how = (
        f"the two are nearly redundant ({lines or 'in model.py'}): reparameterize so one of "
        "them is their sum or difference, tighten a prior, " + low_rank
    )
    return how, fit.label, fit.line


def _py(model: ModelSource, label: str) -> str:
    var = model.variable(label)
    return var.py if var else _base(label)


def _few_draws(
    draws: Draws, model: ModelSource, fit: FitSource, limits: dict[str, float], checks: list[str]
) -> Finding:
    """Low ESS that more draws cure: how many more."""
    total = draws.chains * draws.draws
    rows = []
    for check in checks:
        rows += [(value, label, check) for label, value in draws.worst(check, limits[check])]
    rows.sort()
    if not rows:  # check's own numbers disagree with ours (thresholds at the edge)
        rows = [(math.nan, "(none below the threshold here)", checks[0])]
    value, label, check = rows[0]
    efficiency = value / total if total else math.nan
    need = limits[check] / efficiency if efficiency and efficiency > 0 else math.nan
    per_chain = (
        int(math.ceil(1.2 * need / max(draws.chains, 1) / 100.0) * 100)
        if math.isfinite(need)
        else None
    )
    now = fit.settings.get("draws")
    named = tuple(dict.fromkeys(label for _, label, _ in rows[:3]))
    healthy = math.isfinite(efficiency) and efficiency >= HEALTHY_EFFICIENCY
    evidence = (
        f"{check.replace('_', ' ')} {value:.0f} at {label} from {total} draws "
        f"({draws.chains} chains of {draws.draws}), {efficiency:.2f} effective per draw"
        + (
            "; no divergence or strong correlation behind it"
            if healthy
            else "; low per draw, with no strong pairwise correlation to blame"
        )
    )
    more = f"increase draws to {per_chain} per chain" if per_chain else "increase draws"
    if now is not None:
        more += f" (now draws={now})"
    centred = next(
        (
            t
            for t in model.group_terms()
            if t.centred and (_base(label) in t.sds or _base(label) == t.effect)
        ),
        None,
    )
    slope = None if healthy else _uncentred_slope(label, draws, model)
    if healthy:
        fix = f"{more} in {_sample_line(fit)}; the model itself samples well"
        kind = "too_few_draws"
    elif slope is not None:
        column, line, mean, sd, effect, r = slope
        evidence = evidence.replace(", with no strong pairwise correlation to blame", "")
        evidence += (
            f"; but {effect} varies a slope on {column}, whose mean {mean:.3g} lies "
            f"{abs(mean) / sd:.1f} SDs from 0: the group intercepts are extrapolations to "
            f"{column} = 0, tied to the slopes (correlation {r:+.2f} between the two "
            "across groups and draws)"
        )
        fix = (
            f"centre {column}: {column} = {column} - {mean:.3g} after reading it (its mean, "
            f"as a number, so that predictions for new rows use the same centre; the "
            f"intercepts then describe the groups at {column} = {mean:.3g}); or {more} "
            f"in {_sample_line(fit)}"
        )
        return Finding(
            "ridge",
            tuple(checks),
            (*named, effect),
            evidence,
            fix,
            model.label,
            line,
            {"ess": value, "efficiency": efficiency, "correlation": r, "column": column},
        )
    elif centred is not None:
        fix = (
            f"reparameterize: {centred.centred_words(', '.join(centred.sds))} "
            f"({model.label} line {centred.line}), which mixes slowly when the groups say "
            f"little: non-centre it, {centred.non_centred_form('mean', centred.sds[0])}; or "
            f"{more} in {_sample_line(fit)}"
        )
        kind = "slow_mixing"
        return Finding(
            kind,
            tuple(checks),
            named,
            evidence,
            fix,
            model.label,
            centred.line,
            {"ess": value, "efficiency": efficiency, "draws_per_chain_needed": per_chain},
        )
    else:
        low_rank = (
            ""
            if fit.low_rank or fit.low_rank_call() is None
            else f", or let nutpie adapt a low-rank mass matrix ({fit.low_rank_call()})"
        )
        fix = (
            f"{more} in {_sample_line(fit)}{low_rank}; check the prior of "
            f"{_base(label)} ({model.label} line {model.line_of(label) or '?'})"
        )
        kind = "slow_mixing"
    return Finding(
        kind,
        tuple(checks),
        named,
        evidence,
        fix,
        fit.label,
        fit.line,
        {"ess": value, "efficiency": efficiency, "draws_per_chain_needed": per_chain},
    )


def _uncentred_slope(label: str, draws: Draws, model: ModelSource):
    """A parameter of a group term that varies a slope on a column far from 0:
    (column, line of model.py reading it, mean, sd, effect, intercept-slope correlation)."""
    import numpy as np

    stem = _base(label).split("_", 1)[-1]  # sigma_Subject -> Subject
    effects = {t.effect for t in model.group_terms()} or {
        e for e in draws.slopes if e.startswith("u_")
    }
    for effect, columns in draws.slopes.items():
        if effect not in effects or effect.split("_", 1)[-1] != stem:
            continue
        if "Intercept" not in columns:
            continue
        for column in columns:
            found = model.columns.get(column) or next(
                ((c, n) for py, (c, n) in model.columns.items() if c == column), None
            )
            values = draws.constant.get(column)
            if column == "Intercept" or found is None or values is None or values.std() == 0:
                continue
            mean, sd = float(values.mean()), float(values.std())
            if abs(mean) < 2 * sd:
                continue
            prefix = f"{effect}["
            ints = [v for c, v in draws.columns.items() if c.startswith(prefix)]
            a = [
                draws.columns[c]
                for c in draws.columns
                if c.startswith(prefix) and c.endswith(", Intercept]")
            ]
            b = [
                draws.columns[c]
                for c in draws.columns
                if c.startswith(prefix) and c.endswith(f", {column}]")
            ]
            r = (
                float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])
                if a and b and len(ints)
                else math.nan
            )
            return column, found[1], mean, sd, effect, r
    return None


def _r_hat(
    draws: Draws, model: ModelSource, fit: FitSource, limits: dict[str, float], ridges
) -> Finding:
    """Chains that disagree: separate modes (each chain stable) or too short (drifting)."""
    import numpy as np

    worst = draws.worst("r_hat", limits["r_hat"], count=3)
    if not worst:
        worst = draws.worst("r_hat", -math.inf, count=1)
    label, value = worst[0]
    values = draws.columns[label]
    half = values.shape[1] // 2
    means = values.mean(axis=1)
    sds = values.std(axis=1)
    within = float(np.mean(sds)) or 1.0
    separation = float((means.max() - means.min()) / within)
    drift = float(
        np.max(
            np.abs(values[:, :half].mean(axis=1) - values[:, half:].mean(axis=1)) / (sds + 1e-300)
        )
    )
    named = tuple(lbl for lbl, _ in worst)
    chain_means = ", ".join(f"{m:.3g}" for m in means)
    numbers = {
        "r_hat": value,
        "chain_means": means.tolist(),
        "separation": separation,
        "drift": drift,
    }
    if separation > 2.0 and drift < 0.5:
        evidence = (
            f"r_hat {value:.3f} at {label}: chain means {chain_means} lie up to "
            f"{separation:.1f} within-chain SDs apart while each chain is stable on its own, "
            "so the chains settled in different modes"
        )
        fix = (
            f"more draws will not join them: look at {_base(label)} ({model.label} line "
            f"{model.line_of(label) or '?'}) for a second explanation of the data (label "
            "switching, a sign flip, a weakly identified term) and tighten its prior or "
            "constrain it"
        )
        return Finding(
            "multimodal",
            ("r_hat",),
            named,
            evidence,
            fix,
            model.label,
            model.line_of(label),
            numbers,
        )
    ridge = next(
        (
            f
            for f in ridges
            if any(_base(label) == _base(p) or model.related(label, p) for p in f.parameters)
        ),
        None,
    )
    tune = fit.settings.get("tune")
    evidence = (
        f"r_hat {value:.3f} at {label}: chain means {chain_means} (at most "
        f"{separation:.1f} within-chain SDs apart), and the chains still drift (halves differ "
        f"by up to {drift:.1f} SD): the chains are too short to have mixed"
        + (
            f"; the ridge between {ridge.parameters[0]} and {ridge.parameters[1]} slows them"
            if ridge
            else ""
        )
    )
    fix = (
        "increase tune and draws"
        + (f" (now tune={tune}, draws={fit.settings.get('draws')})" if tune is not None else "")
        + f" in {_sample_line(fit)}"
        + (
            f"; the cause is the ridge: {ridge.fix}"
            if ridge and not ridge.checks
            else "; the ridge's fix cures the cause"
            if ridge
            else ""
        )
    )
    return Finding("too_short", ("r_hat",), named, evidence, fix, fit.label, fit.line, numbers)


def _energy(draws: Draws, model: ModelSource) -> Finding | None:
    """Low E-BFMI: the parameters whose values move with the energy."""
    import numpy as np

    if draws.energy is None:
        return None
    energy = draws.energy.reshape(-1)
    scored = []
    for label, values in draws.columns.items():
        if not draws.varying(label):
            continue
        flat = values.reshape(-1)
        flat = np.log(flat) if flat.min() > 0 else flat
        r = np.corrcoef(flat, energy)[0, 1]
        if np.isfinite(r):
            scored.append((abs(float(r)), label))
    if not scored:
        return None
    scored.sort(reverse=True)
    r, label = scored[0]
    named = tuple(lbl for _, lbl in scored[:3])
    evidence = (
        f"low E-BFMI; the energy moves most with {label} (|r| {r:.2f}): the sampler "
        "cannot move through its range in one trajectory"
    )
    fix = (
        f"a tighter prior on {_base(label)}, or non-centre the group effects it scales "
        f"({model.label} line {model.line_of(label) or '?'})"
    )
    return Finding(
        "energy",
        ("e_bfmi",),
        named,
        evidence,
        fix,
        model.label,
        model.line_of(label),
        {"energy_correlation": r},
    )
