"""Model formulas: lme4 or Stata text -> a small description of the model's terms.

`parse("y ~ tx + (0 + tx | group)")` and `parse("mixed y tx || group: tx, nocons")`
return the same `ModelSpec`. lme4 terms are parsed by formulae (the formula library behind
Bambi); this module only does the bookkeeping formulae leaves to its callers: which
group terms share one bar (and so one covariance matrix), and `||`. Stata's `mixed`
syntax is simple enough to read here. The description knows nothing about data or PyMC;
`mlm.codegen` turns it into a model.py. `--prior "NAME=Dist(args)"` texts are read here
too, as text only: which parameters and distributions exist is for codegen to validate.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from mlm.errors import MlmError

FAMILIES = (
    "gaussian",
    "student_t",
    "bernoulli",
    "binomial",
    "poisson",
    "negbinomial",
    "gamma",
    "lognormal",
    "beta",
    "zero_inflated_poisson",
    "zero_inflated_negbinomial",
)
# Families with a residual scale (sigma, a shape or a precision): a grouping with as many
# levels as rows cannot be told apart from it.
SCALED_FAMILIES = ("gaussian", "student_t", "lognormal", "gamma", "beta")
# Families whose --sigma model is log(sigma) linear in terms.
SIGMA_FAMILIES = ("gaussian", "student_t", "lognormal")
# Stata's multilevel commands and the family each one fits (meglm: its family() option).
STATA_COMMANDS = {
    "mixed": "gaussian",
    "melogit": "bernoulli",
    "mepoisson": "poisson",
    "menbreg": "negbinomial",
    "meglm": "gaussian",
}
# meglm's family() and the link mlm writes for it (meglm's default link for each).
_MEGLM_FAMILIES = {
    "gaussian": ("gaussian", "identity"),
    "bernoulli": ("bernoulli", "logit"),
    "poisson": ("poisson", "log"),
    "nbinomial": ("negbinomial", "log"),
    "gamma": ("gamma", "log"),
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


@dataclass(frozen=True)
class Term:
    """A product of columns, `a:b`; the empty product is the intercept."""

    variables: tuple[str, ...] = ()

    @property
    def is_intercept(self) -> bool:
        return not self.variables

    @property
    def label(self) -> str:
        return ":".join(self.variables) if self.variables else "1"


INTERCEPT = Term()


@dataclass(frozen=True)
class GroupTerm:
    """Effects that vary by the levels of `factor` (several columns: their combinations).

    `terms` are the columns whose coefficients vary (the intercept is `INTERCEPT`);
    `correlated` gives them, and the levels of a categorical column among them, one
    covariance matrix, as lme4's `|` does. `block` is the bracket a term was split from by
    `||` (or by Stata's default independent covariance): a categorical column in it is
    coded as it would be in that bracket (treatment contrasts beside an intercept).
    """

    factor: tuple[str, ...]
    terms: tuple[Term, ...]
    correlated: bool
    source: str = field(default="", compare=False)
    block: tuple[Term, ...] = ()

    @property
    def factor_label(self) -> str:
        return ":".join(self.factor)

    @property
    def label(self) -> str:
        """The term in lme4 syntax, `(0 + x | g)`, whichever syntax it was written in."""
        lhs = " + ".join(t.label for t in self.terms)
        if INTERCEPT not in self.terms:
            lhs = f"0 + {lhs}"
        bar = "||" if self.block and self.terms != (INTERCEPT,) else "|"
        return f"({lhs} {bar} {self.factor_label})"

    @property
    def siblings(self) -> tuple[Term, ...]:
        """The terms coded together: the bracket's (`block`), or this term's own."""
        return self.block or self.terms


@dataclass(frozen=True)
class Derived:
    """A numeric column computed from others, as the formula writes it: `I(x^2)`, `log(x)`.

    `expression` is the same in Python over the columns' names (numpy as `np`).
    """

    label: str
    expression: str
    columns: tuple[str, ...]

    @property
    def name(self) -> str:
        return slug(self.label)


@dataclass(frozen=True)
class Reference:
    """The reference level of a treatment-coded column: `level`, or Stata's `position`.

    `position` is "first", "last", "freq" (the most frequent) or "#k" (the k-th level);
    `level` is a value (a number or text, matched to the data's levels by codegen).
    """

    column: str
    level: object = None
    position: str = ""
    source: str = field(default="", compare=False)


@dataclass(frozen=True)
class Prior:
    """`--prior "NAME=Dist(args)"`: the prior of one parameter, as the user wrote it.

    `variance` is `NAME^2=...` (or `NAME**2`): the prior is on the square of the SD NAME.
    """

    name: str
    distribution: str
    args: tuple = ()
    kwargs: tuple[tuple[str, object], ...] = ()
    variance: bool = False
    source: str = field(default="", compare=False)


@dataclass(frozen=True)
class ModelSpec:
    """What a formula says: response, population terms, group terms, residual scale."""

    response: str
    terms: tuple[Term, ...]
    groups: tuple[GroupTerm, ...] = ()
    sigma: tuple[Term, ...] | None = None  # terms of log(sigma); None: one sigma
    family: str = "gaussian"
    # Columns made categorical by the formula: factor(x), C(x), Stata's i.x.
    categorical: frozenset[str] = field(default_factory=frozenset)
    source: str = field(default="", compare=False)
    sigma_source: str = field(default="", compare=False)
    priors: tuple[Prior, ...] = ()  # --prior overrides of the generated default priors
    derived: tuple[Derived, ...] = ()  # computed columns the terms name by their label
    references: tuple[Reference, ...] = ()  # reference levels other than the first
    trials: Derived | None = None  # binomial: the number of trials of each row
    notes: tuple[str, ...] = field(default=(), compare=False)  # to tell the user

    @property
    def variables(self) -> list[str]:
        """Every column the model reads, response first, each once."""
        computed = {d.label: d.columns for d in self.derived}
        names = [self.response]
        for term in self.terms + tuple(t for g in self.groups for t in g.terms):
            names += term.variables
        for group in self.groups:
            names += group.factor
        for term in self.sigma or ():
            names += term.variables
        if self.trials is not None:
            names += self.trials.columns
        columns = [c for name in names for c in computed.get(name, (name,))]
        return list(dict.fromkeys(columns))

    def reference(self, column: str) -> Reference | None:
        return next((r for r in self.references if r.column == column), None)


def parse(
    formula: str,
    sigma: str | None = None,
    family: str | None = None,
    priors: tuple[str, ...] | list[str] = (),
) -> ModelSpec:
    """The model a formula describes, in lme4 (`y ~ x + (1 | g)`) or Stata (`mixed ...`) form.

    `sigma` is a one-sided formula for log(residual SD), `"~ condition"`; `family` is
    one of FAMILIES (default: gaussian, or what the Stata command implies); `priors` are
    `"NAME=Dist(args)"` texts (see `parse_prior`).
    """
    text = " ".join(formula.split())
    if not text:
        raise MlmError("the formula is empty; write it as 'y ~ x + (1 | group)'")
    first = text.split(" ", 1)[0]
    reader = _Reader(text)
    if first in STATA_COMMANDS:
        spec = _parse_stata(text, reader)
    elif "~" in text:
        spec = _parse_lme4(text, reader)
    else:
        raise MlmError(
            f"cannot read the formula {formula!r}: write it as lme4 does ('y ~ x + (1 | g)') "
            f"or as a Stata command ({', '.join(STATA_COMMANDS)} y x || g:)"
        )
    if family is not None:
        if family not in FAMILIES:
            raise MlmError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
        implied = spec.family if first in STATA_COMMANDS or spec.trials is not None else None
        if implied == "binomial" and family == "bernoulli":
            family = "binomial"  # a logistic GLMM of successes out of trials
        if family == "binomial" and spec.trials is None:
            family = "bernoulli"  # lme4's binomial family on a 0/1 response
        if implied is not None and family != implied:
            said = f"Stata's {first}" if first in STATA_COMMANDS else "cbind(successes, failures)"
            raise MlmError(f"--family {family} contradicts {said}, which fits {implied}")
        spec = _replace(spec, family=family)
    if sigma is not None:
        if spec.sigma is not None:
            raise MlmError("the residual scale is given twice: by --sigma and by residuals()")
        spec = _replace(
            spec, sigma=_parse_sigma(sigma, reader), sigma_source=" ".join(sigma.split())
        )
    if spec.sigma is not None and spec.family not in SIGMA_FAMILIES:
        raise MlmError(
            "a residual scale model (--sigma) needs a family with a scale: gaussian, "
            f"student_t or lognormal, not {spec.family}"
        )
    _validate_groups(spec)
    spec = reader.finish(spec)
    if priors:
        spec = _replace(spec, priors=_parse_priors(priors))
    return spec


def lme4_formula(
    spec: ModelSpec,
    numeric: frozenset[str] | set[str] | None = None,
    references: dict[str, object] | None = None,
) -> str:
    """The spec written as lme4 would: one line, whatever syntax it was parsed from.

    A column the formula made categorical is written `factor(x)` when it is in `numeric`
    (the data's numeric columns; None: always), and with a chosen reference level
    `relevel(factor(x), ref = "b")`; `references` gives the levels Stata's ib(last).x and
    the like chose in the data.
    """

    def show(name: str) -> str:
        reference = spec.reference(name)
        level = (references or {}).get(name, reference.level if reference else None)
        if level is not None:
            return f'relevel(factor({name}), ref = "{level}")'
        if name in spec.categorical and (numeric is None or name in numeric):
            return f"factor({name})"
        return name

    def label(term: Term) -> str:
        return ":".join(show(v) for v in term.variables) if term.variables else "1"

    parts = [] if INTERCEPT in spec.terms else ["0"]
    parts += [label(t) for t in spec.terms if not t.is_intercept]
    written: set = set()
    for group in spec.groups:
        columns, bar = group.terms, "|"
        if group.block:
            if (group.factor, group.block) in written:
                continue
            written.add((group.factor, group.block))
            columns, bar = group.block, "||"
        lhs = " + ".join(label(t) for t in columns)
        if INTERCEPT not in columns:
            lhs = f"0 + {lhs}"
        parts.append(f"({lhs} {bar} {':'.join(group.factor)})")
    response = spec.response
    if spec.trials is not None:
        response = f"cbind({response}, {_difference(spec.trials.label, response)})"
    return f"{response} ~ {' + '.join(parts) or '1'}"


def _difference(total: str, part: str) -> str:
    """`total - part` as lme4 text, `n - s`; the failures of cbind(s, f) come back as `f`."""
    prefix = f"{part} + "
    if total.startswith(prefix):
        return total[len(prefix) :]
    return f"{total} - {part}" if _NAME.match(total) else f"({total}) - {part}"


_OPERATORS = {
    "**": "pow",
    "^": "pow",
    "-": "minus",
    "+": "plus",
    "*": "times",
    "/": "over",
    ">=": "ge",
    "<=": "le",
    ">": "gt",
    "<": "lt",
    "==": "eq",
    "!=": "ne",
}


def slug(label: str) -> str:
    """A Python name for a computed column: `I(x^2)` -> x_pow_2, `log(x)` -> log_x."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", label):
        return label
    inner = label[2:-1] if label.startswith("I(") and label.endswith(")") else label
    inner = inner.replace("np.", "")
    tokens = re.findall(r"\*\*|>=|<=|==|!=|[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?|[-+*/^<>]", inner)
    name = "_".join(_OPERATORS.get(t, t.replace(".", "p")) for t in tokens)
    return name if re.match(r"[A-Za-z_]", name) else f"I_{name}"


def _replace(spec: ModelSpec, **changes) -> ModelSpec:
    from dataclasses import replace

    return replace(spec, **changes)


# priors --------------------------------------------------------------------------------

_PRIOR_FORM = "write it as NAME=Distribution(arguments), e.g. --prior 'sigma_group=HalfNormal(1)'"


def parse_prior(text: str) -> Prior:
    """`"sigma_g^2=Gamma(1, beta=1)"` -> Prior("sigma_g", "Gamma", (1,), (("beta", 1),), True).

    The arguments must be Python literals (numbers, mostly); `pm.Gamma(...)` reads as
    `Gamma(...)`.
    """
    source = " ".join(text.split())
    head, equals, call = source.partition("=")
    name = "".join(head.split())
    variance = name.endswith(("^2", "**2"))
    name = name.removesuffix("^2").removesuffix("**2")
    if not equals or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise MlmError(f"--prior {text!r}: cannot read it; {_PRIOR_FORM}")
    try:
        tree = ast.parse(call.strip(), mode="eval").body
    except SyntaxError:
        tree = None
    if isinstance(tree, ast.Attribute | ast.Name):
        raise MlmError(f"--prior {text!r}: give the distribution's arguments, as in {call}(...)")
    if not isinstance(tree, ast.Call):
        raise MlmError(
            f"--prior {text!r}: {call.strip()!r} is not a distribution call; {_PRIOR_FORM}"
        )
    function = tree.func
    if isinstance(function, ast.Attribute) and ast.unparse(function.value) in ("pm", "pymc"):
        distribution = function.attr
    elif isinstance(function, ast.Name):
        distribution = function.id
    else:
        raise MlmError(f"--prior {text!r}: {ast.unparse(function)!r} is not a distribution name")
    if any(isinstance(a, ast.Starred) for a in tree.args) or any(
        k.arg is None for k in tree.keywords
    ):
        raise MlmError(f"--prior {text!r}: write the arguments out, without * or **")
    args = tuple(_literal(node, text) for node in tree.args)
    kwargs = tuple((k.arg, _literal(k.value, text)) for k in tree.keywords)
    return Prior(name, distribution, args, kwargs, variance, source)


def _literal(node: ast.expr, text: str):
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise MlmError(
            f"--prior {text!r}: {ast.unparse(node)!r} is not a Python literal; --prior takes "
            "numbers (for a prior computed from the data, edit its line in model.py)"
        ) from None


def _parse_priors(texts) -> tuple[Prior, ...]:
    priors: dict[str, Prior] = {}
    for text in texts:
        prior = parse_prior(text)
        if prior.name in priors:
            raise MlmError(
                f"--prior gives {prior.name} twice: {priors[prior.name].source!r} and "
                f"{prior.source!r}; keep one"
            )
        priors[prior.name] = prior
    return tuple(priors.values())


# calls in a formula ---------------------------------------------------------------------

# Functions of a column a formula may apply, as numpy names them.
_NUMPY = {
    "log": "np.log",
    "log2": "np.log2",
    "log10": "np.log10",
    "log1p": "np.log1p",
    "exp": "np.exp",
    "expm1": "np.expm1",
    "sqrt": "np.sqrt",
    "abs": "np.abs",
}
# Functions of a column that standardize it, and their numpy forms over `x`.
_STANDARDIZE = {
    "scale": "(({x}) - ({x}).mean()) / ({x}).std(ddof=1)",  # R's scale(): the sample SD
    "standardize": "(({x}) - ({x}).mean()) / ({x}).std()",  # formulae's
    "center": "({x}) - ({x}).mean()",
}
_FACTOR = ("factor", "as_factor", "C", "T", "relevel")
_READS = "factor(), C(), relevel(), I(), log(), exp(), sqrt(), abs(), scale() and center()"
_CALL = re.compile(r"(?<![A-Za-z0-9_.])([A-Za-z_][A-Za-z0-9_.]*)\s*\(")


class _Reader:
    """What parsing learns beside the terms: categorical and computed columns, reference
    levels, notes; and the calls replaced by stand-in names while formulae reads the rest."""

    def __init__(self, text: str):
        self.text = text
        self.categorical: set[str] = set()
        self.derived: dict[str, Derived] = {}
        self.references: dict[str, Reference] = {}
        self.notes: list[str] = []
        self.calls: dict[str, str] = {}  # stand-in -> the call as written
        self.bars: dict[str, str] = {}  # stand-in -> the group term as written
        self.values: dict[str, str] = {}  # stand-in -> the column or computed column

    def finish(self, spec: ModelSpec) -> ModelSpec:
        used = {v for t in _all_terms(spec) for v in t.variables}
        return _replace(
            spec,
            categorical=frozenset(spec.categorical | self.categorical),
            derived=tuple(d for label, d in self.derived.items() if label in used),
            references=tuple(self.references.values()),
            notes=tuple(dict.fromkeys(self.notes)),
        )

    def restore(self, message: str) -> str:
        """`message` with every stand-in name replaced by the text it stands for."""
        for stand_in, original in {**self.calls, **self.bars}.items():
            message = message.replace(stand_in, original)
        return message.replace("mlm_response ~ ", "~ ").replace("mlm_response", "")

    def stand_in(self, text: str) -> str:
        """`text` with each function call replaced by a name formulae reads as a column."""
        out, at = [], 0
        while (match := _CALL.search(text, at)) is not None:
            end = _closing(text, match.end() - 1)
            if end is None:
                raise MlmError(_point(self.text, text[match.start() :], "a '(' never closed"))
            call = " ".join(text[match.start() : end + 1].split())
            stand_in = next((k for k, v in self.calls.items() if v == call), None)
            if stand_in is None:
                stand_in = f"mlm_call_{len(self.calls)}"
                self.calls[stand_in] = call
            out += [text[at : match.start()], stand_in]
            at = end + 1
        return "".join([*out, text[at:]]).replace("^", "**")  # R's (a + b)^2 is formulae's **

    def describe(self, formula: str, where: str):
        import formulae

        try:
            return formulae.model_description(formula)
        except Exception as exc:
            shown = self.restore(where).strip()
            raise MlmError(
                _point(self.text, shown, f"cannot parse {shown!r}: {self.restore(str(exc))}")
            ) from None

    def variable(self, component, where: str) -> str:
        """A formulae component as a column name or a computed column's label."""
        kind = type(component).__name__
        name = getattr(component, "name", str(component))
        if kind != "Variable":
            shown = self.restore(name)
            raise MlmError(_point(self.text, shown, f"cannot read '{shown}' in {where}"))
        if name in self.bars:
            raise MlmError(
                _point(
                    self.text,
                    self.bars[name],
                    f"{self.bars[name]} is a group term: add it to the formula on its own, "
                    "not in an interaction or a function",
                )
            )
        if name not in self.calls:
            return name
        if name not in self.values:
            self.values[name] = self.call(self.calls[name])
        return self.values[name]

    def call(self, call: str) -> str:
        """The column a call names (factor(x), I(x^2), log(x), ...), recording what it does."""
        code = re.sub(r"\bas\.factor\s*\(", "as_factor(", call.replace("^", "**"))
        code = code.replace("contr.treatment", "Treatment")
        try:
            tree = ast.parse(code, mode="eval").body
        except SyntaxError:
            raise MlmError(_point(self.text, call, f"cannot read '{call}'")) from None
        if not isinstance(tree, ast.Call):
            raise MlmError(_point(self.text, call, f"cannot read '{call}'"))
        function = ast.unparse(tree.func)
        args, kwargs = tree.args, {k.arg: k.value for k in tree.keywords}
        if function in _FACTOR:
            return self.factor(call, function, args, kwargs)
        if function in ("I",) and len(args) == 1 and not kwargs:
            if isinstance(args[0], ast.Name):
                return args[0].id  # I(x) is x
            return self.computed(f"I({_r_text(args[0])})", args[0], call)
        bare = function.removeprefix("np.").removeprefix("numpy.")
        if bare in _NUMPY and len(args) == 1 and not kwargs:
            return self.computed(f"{bare}({_r_text(args[0])})", tree, call)
        if bare in _STANDARDIZE and len(args) == 1 and not kwargs:
            label = f"{bare}({_r_text(args[0])})"
            inner, columns = self._python(args[0], call)
            expression = _STANDARDIZE[bare].format(x=inner)
            return self._derived(label, expression, columns)
        if bare == "poly":
            reason = (
                "poly() is not supported: write the powers out, x + I(x^2) (raw "
                "polynomials), or compute orthogonal ones in data.py"
            )
        elif bare == "offset":
            reason = "offset() is not supported; compute what you need in data.py"
        elif bare in _NUMPY or bare in _STANDARDIZE or function == "I":
            reason = f"'{call}': {bare}() takes one argument here"
        else:
            reason = (
                f"'{call}' is a function mlm does not read; it reads {_READS} (compute other "
                "columns in data.py)"
            )
        raise MlmError(_point(self.text, call, reason))

    def factor(self, call: str, function: str, args, kwargs) -> str:
        """factor(x), C(x), C(x, Treatment("b")), relevel(x, ref = "b"), T(x, ref="b")."""
        if not args or not isinstance(_unwrap(args[0]), ast.Name):
            raise MlmError(
                _point(self.text, call, f"'{call}': name one column, as in {function}(x)")
            )
        column = _unwrap(args[0]).id
        self.categorical.add(column)
        level, rest = None, list(args[1:])
        if function == "relevel":
            level = kwargs.pop("ref", rest.pop(0) if rest else None)
        elif function == "T":
            level = kwargs.pop("ref", rest.pop(0) if rest else None)
        elif function == "C" and (rest or "contrast" in kwargs):
            contrast = kwargs.pop("contrast", rest.pop(0) if rest else None)
            head = contrast.func if isinstance(contrast, ast.Call) else contrast
            if ast.unparse(head) not in ("Treatment", "T"):
                raise MlmError(
                    _point(
                        self.text,
                        call,
                        f"'{call}': mlm codes factors by treatment contrasts only; write "
                        f'C({column}) or C({column}, Treatment("level"))',
                    )
                )
            if isinstance(contrast, ast.Call):
                inner = {k.arg: k.value for k in contrast.keywords}
                level = inner.pop("reference", inner.pop("base", None))
                if contrast.args:
                    level = contrast.args[0]
        if rest or kwargs or (function == "relevel" and level is None):
            raise MlmError(_point(self.text, call, f"cannot read '{call}'"))
        if level is not None:
            try:
                value = ast.literal_eval(level)
            except ValueError:
                raise MlmError(
                    _point(self.text, call, f"'{call}': write the level in quotes")
                ) from None
            self.reference(Reference(column, level=value, source=call))
        return column

    def reference(self, reference: Reference) -> None:
        known = self.references.get(reference.column)
        if known is not None and known != reference:
            raise MlmError(
                f"{reference.column}'s reference level is given twice: by '{known.source}' and "
                f"by '{reference.source}'; keep one"
            )
        self.references[reference.column] = reference

    def computed(self, label: str, node: ast.expr, call: str) -> str:
        expression, columns = self._python(node, call)
        return self._derived(label, expression, columns)

    def _derived(self, label: str, expression: str, columns: tuple[str, ...]) -> str:
        if not columns:
            raise MlmError(_point(self.text, label, f"'{label}' names no column"))
        self.derived.setdefault(label, Derived(label, expression, columns))
        return label

    def _python(self, node: ast.expr, call: str) -> tuple[str, tuple[str, ...]]:
        """The numpy expression of a formula's arithmetic, and the columns it reads."""
        columns: list[str] = []
        allowed = (
            ast.Expression,
            ast.BinOp,
            ast.UnaryOp,
            ast.Compare,
            ast.Constant,
            ast.Name,
            ast.Call,
            ast.Load,
            ast.Attribute,
            ast.operator,
            ast.unaryop,
            ast.cmpop,
        )

        class Rewrite(ast.NodeTransformer):
            def visit_Call(inner, call_node):
                name = ast.unparse(call_node.func).removeprefix("np.").removeprefix("numpy.")
                if name not in _NUMPY or len(call_node.args) != 1 or call_node.keywords:
                    raise MlmError(
                        _point(
                            self.text,
                            call,
                            f"'{call}': {ast.unparse(call_node.func)}() is not a function "
                            f"mlm reads inside a formula (it reads {', '.join(_NUMPY)})",
                        )
                    )
                arg = inner.visit(call_node.args[0])
                return ast.parse(f"{_NUMPY[name]}({ast.unparse(arg)})", mode="eval").body

            def visit_Name(inner, name_node):
                columns.append(name_node.id)
                return name_node

        for child in ast.walk(node):
            if not isinstance(child, allowed) or (
                isinstance(child, ast.Constant) and not isinstance(child.value, int | float)
            ):
                raise MlmError(
                    _point(self.text, call, f"cannot read '{call}': use arithmetic on columns")
                )
        rewritten = Rewrite().visit(ast.parse(ast.unparse(node), mode="eval").body)
        return ast.unparse(rewritten), tuple(dict.fromkeys(columns))


def _unwrap(node: ast.expr) -> ast.expr:
    """`factor(x)` inside relevel() or C() is `x`."""
    if (
        isinstance(node, ast.Call)
        and ast.unparse(node.func) in ("factor", "as_factor")
        and len(node.args) == 1
    ):
        return node.args[0]
    return node


def _r_text(node: ast.expr) -> str:
    """Python arithmetic as R writes it: `x ** 2` -> `x^2`."""
    return ast.unparse(node).replace(" ** ", "^").replace("np.", "")


def _closing(text: str, open_at: int) -> int | None:
    depth = 0
    for i in range(open_at, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i
    return None


def _all_terms(spec: ModelSpec) -> list[Term]:
    return [*spec.terms, *(t for g in spec.groups for t in g.terms), *(spec.sigma or ())]


# lme4 ----------------------------------------------------------------------------------


def _parse_lme4(text: str, reader: _Reader) -> ModelSpec:
    if text.count("~") != 1:
        raise MlmError(f"the formula {text!r} must have exactly one '~' (response ~ terms)")
    lhs, rhs = (part.strip() for part in text.split("~"))
    response, trials = _response(lhs, reader)
    fixed, bars = _split_bars(rhs, text)
    # Each group term becomes a stand-in name for formulae, whose terms are then dropped.
    stand_ins = [f"mlm_bar_{i}" for i in range(len(bars))]
    for stand_in, (start, end, block) in reversed(list(zip(stand_ins, bars, strict=True))):
        fixed = fixed[:start] + stand_in + fixed[end:]
        reader.bars[stand_in] = f"({block.strip()})"
    description = reader.describe(f"mlm_response ~ {reader.stand_in(fixed)}", rhs)
    terms = [INTERCEPT] if _has_intercept(description) else []
    for term in description.terms:
        if type(term).__name__ == "Intercept":
            continue
        components = getattr(term, "components", [])
        if len(components) == 1 and getattr(components[0], "name", "") in reader.bars:
            continue
        terms.append(_term(term, reader, rhs))
    groups: list[GroupTerm] = []
    for _, _, block in bars:
        groups += _group_terms(block, reader)
    family = "binomial" if trials is not None else "gaussian"
    return ModelSpec(
        response=response,
        terms=tuple(dict.fromkeys(terms)),
        groups=tuple(groups),
        family=family,
        trials=trials,
        source=text,
    )


def _response(lhs: str, reader: _Reader) -> tuple[str, Derived | None]:
    """The response column, and for `cbind(successes, failures)` the trials."""
    if _NAME.match(lhs):
        return lhs, None
    match = re.fullmatch(r"(cbind|p|prop|proportion)\s*\(\s*(\w+)\s*,\s*(.+?)\s*\)", lhs)
    if match is None:
        raise MlmError(
            _point(
                reader.text,
                lhs,
                f"the response {lhs!r} must be one column name, or cbind(successes, failures) "
                "for binomial counts (transform it in data.py)",
            )
        )
    kind, successes, other = match.groups()
    other = " ".join(other.split())
    if kind != "cbind":  # formulae's p(successes, trials)
        total = other
    elif (minus := re.fullmatch(rf"(\w+)\s*-\s*{successes}", other)) is not None:
        total = minus.group(1)  # cbind(s, n - s): n trials
    elif _NAME.match(other):
        total = f"{successes} + {other}"
    else:
        raise MlmError(_point(reader.text, lhs, f"write {lhs!r} as cbind(s, f) or cbind(s, n - s)"))
    if _NAME.match(total):
        return successes, Derived(total, total, (total,))
    columns = tuple(dict.fromkeys(re.findall(r"[A-Za-z_]\w*", total)))
    return successes, Derived(total, total, columns)


def _term(term, reader: _Reader, where: str) -> Term:
    names = [reader.variable(c, where) for c in term.components]
    return Term(tuple(dict.fromkeys(names)))


def _split_bars(rhs: str, text: str) -> tuple[str, list[tuple[int, int, str]]]:
    """The bracketed `( ... | ... )` blocks of `rhs`, with their spans."""
    bars, depth, start = [], 0, None
    for i, char in enumerate(rhs):
        if char == "(":
            if depth == 0:
                start = i
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise MlmError(_point(text, rhs[: i + 1], "a ')' without its '('"))
            if depth == 0 and "|" in rhs[start + 1 : i]:
                bars.append((start, i + 1, rhs[start + 1 : i]))
    if depth:
        raise MlmError(_point(text, rhs[start:], "a '(' that is never closed"))
    stray = [
        i for i, char in enumerate(rhs) if char == "|" and not any(s < i < e for s, e, _ in bars)
    ]
    if stray:
        offset = text.rfind(rhs)  # rhs ends the text; its first copy may be in the response
        raise MlmError(
            _point(
                text,
                "|",
                "a group term must be in parentheses, as in (1 + x | group)",
                at=offset + stray[0] if offset >= 0 else None,
            )
        )
    return rhs, bars


def _group_terms(block: str, reader: _Reader) -> list[GroupTerm]:
    text = reader.text
    source = f"({block.strip()})"
    double = "||" in block
    lhs, _, rhs = block.partition("||" if double else "|")
    if not lhs.strip() or not rhs.strip() or "|" in rhs:
        raise MlmError(_point(text, source, f"{source} must read (terms | grouping column)"))
    description = reader.describe(f"mlm_response ~ {reader.stand_in(lhs)}", source)
    columns = [INTERCEPT] if _has_intercept(description) else []
    columns += [
        _term(t, reader, source) for t in description.terms if type(t).__name__ != "Intercept"
    ]
    columns = list(dict.fromkeys(columns))
    if not columns:
        raise MlmError(_point(text, source, f"{source} has no term that varies by group"))
    factors = reader.describe(f"mlm_response ~ 0 + {reader.stand_in(rhs)}", source).terms
    groups = []
    for term in factors:
        factor = []
        for component in term.components:
            name = reader.variable(component, source)
            if name in reader.derived:
                raise MlmError(_point(text, name, f"{source}: group by a column, not by '{name}'"))
            factor.append(name)
        factor = tuple(factor)
        if double:
            groups += [GroupTerm(factor, (c,), False, source, tuple(columns)) for c in columns]
        else:
            correlated = columns != [INTERCEPT]
            groups.append(GroupTerm(factor, tuple(columns), correlated, source))
    return groups


def _parse_sigma(sigma: str, reader: _Reader) -> tuple[Term, ...]:
    text = " ".join(sigma.split())
    if not text.startswith("~"):
        raise MlmError(f"--sigma {sigma!r} must be a one-sided formula, such as '~ condition'")
    if "|" in text:
        raise MlmError(_point(text, "|", "--sigma takes no group terms"))
    sub = _Reader(text)
    sub.categorical, sub.derived, sub.references = (
        reader.categorical,
        reader.derived,
        reader.references,
    )
    description = sub.describe(f"mlm_response ~ {sub.stand_in(text[1:])}", text)
    terms = [INTERCEPT] if _has_intercept(description) else []
    terms += [_term(t, sub, text) for t in description.terms if type(t).__name__ != "Intercept"]
    if not terms:
        raise MlmError(
            f"--sigma {sigma!r} gives the residual SD no terms (not even a constant): leave "
            "--sigma out for one residual SD, or name the columns it varies by, as in "
            "'~ condition'"
        )
    return tuple(terms)


def _has_intercept(description) -> bool:
    return any(type(t).__name__ == "Intercept" for t in description.terms)


def _point(text: str, fragment: str, message: str, at: int | None = None) -> str:
    """`message`, then the formula with a caret line under `fragment` (its first
    occurrence, or the one at position `at` of `text`)."""
    if at is None:
        at = text.find(fragment.strip()) if fragment.strip() else -1
    if at < 0:
        return f"{message}\n  in: {text}"
    marks = " " * at + "^" * max(1, len(fragment.strip()))
    return f"{message}\n  in: {text}\n      {marks}"


def _validate_groups(spec: ModelSpec) -> None:
    seen: dict[tuple, str] = {}
    for group in spec.groups:
        odd = [part for part in group.factor if not isinstance(part, str)]
        if odd:
            raise MlmError(
                f"{group.source}: a group term groups by columns (g, g:h, or g/h for nesting); "
                f"{odd[0]!r} is not a column"
            )
        for term in group.terms:
            key = (group.factor, term)
            if key in seen:
                raise MlmError(
                    f"'{term.label}' varies by {group.factor_label} twice, in {seen[key]} "
                    f"and in {group.source}; keep one"
                )
            seen[key] = group.source


# Stata ---------------------------------------------------------------------------------


def _parse_stata(text: str, reader: _Reader) -> ModelSpec:
    """`mixed y x i.c c.x#i.c || a: x, nocons cov(unstructured) || b: , residuals(...)`;
    `mixed y x || _all: R.a || b:` (crossed)."""
    command, *levels = (part.strip() for part in text.split("||"))
    family = STATA_COMMANDS[command.split(" ", 1)[0]]
    fixed, options = _stata_options(command.split(" ", 1)[1] if " " in command else "", reader)
    names = fixed.split()
    if not names:
        raise MlmError(_point(text, command, "the Stata command names no dependent variable"))
    response, *predictors = names
    if not _NAME.match(response):
        raise MlmError(_point(text, response, f"the dependent variable {response!r} is no name"))
    terms = [] if options.pop("noconstant", None) is not None else [INTERCEPT]
    for token in predictors:
        terms += [t for t in _stata_terms(token, reader) if t not in terms]
    global_options = {k: options.pop(k) for k in _GLOBAL if k in options}
    _no_more(options, text, command)

    groups, nested = [], []
    for level in levels:
        head, colon, rest = level.partition(":")
        factor = head.strip()
        if not colon or not _NAME.match(factor):
            raise MlmError(_point(text, level, f"'|| {level}' must read '|| group: [slopes]'"))
        varlist, level_options = _stata_options(rest, reader)
        for name in _GLOBAL:
            if name in level_options:
                if name in global_options:
                    raise MlmError(_point(text, name, f"{name}() is given twice"))
                global_options[name] = level_options.pop(name)
        # Stata's R.x: an intercept per level of x within each group of the level, one
        # variance; _all is the whole sample, so its R.x are crossed with the other levels.
        crossed = re.fullmatch(r"R\.([A-Za-z_]\w*)", varlist)
        stray = next((t for t in varlist.split() if t.startswith("R.")), None)
        if stray and len(varlist.split()) > 1:
            raise MlmError(
                _point(
                    text,
                    stray,
                    f"{stray} must be alone after the colon, as in '|| _all: {stray}'; "
                    "give each R. term a level of its own",
                )
            )
        if factor == "_all" and nested:
            raise MlmError(
                _point(
                    text,
                    level,
                    f"'|| {level}' comes after '|| {nested[-1]}:'; _all is the whole sample, "
                    "so it comes before the levels nested in it",
                )
            )
        if factor == "_all" and not crossed:
            raise MlmError(
                _point(
                    text,
                    level,
                    f"'|| {level}': mlm reads _all only as '_all: R.x', an intercept per "
                    "level of x, crossed with the other levels (lme4's (1 | x))",
                )
            )
        if crossed:
            columns = [INTERCEPT]
            structure = level_options.pop("covariance", "identity")
            supported = ("identity",)
            advice = f"R.{crossed.group(1)}'s levels share one variance: covariance(identity)"
        else:
            columns = [] if level_options.pop("noconstant", None) is not None else [INTERCEPT]
            for token in varlist.split():
                columns += [t for t in _stata_terms(token, reader) if t not in columns]
            structure = level_options.pop("covariance", "independent")
            supported = ("independent", "unstructured")
            advice = "use independent (Stata's default) or unstructured"
        _no_more(level_options, text, level)
        if structure not in supported:
            written = re.search(r"cov\w*\s*\(\s*([^)]*?)\s*\)", level, re.IGNORECASE)
            raise MlmError(
                _point(
                    text,
                    written.group(1) if written else level,
                    f"covariance({structure}) is not supported; {advice}",
                )
            )
        if not columns:
            raise MlmError(_point(text, level, f"'|| {level}' has no effect that varies"))
        if factor != "_all":
            nested.append(factor)
        source = f"|| {level}"
        grouping = (*nested, crossed.group(1)) if crossed else tuple(nested)
        factors = {v for c in columns for v in c.variables if v in reader.categorical}
        if structure == "unstructured" or (len(columns) == 1 and not factors):
            # One column (not a factor's levels): independent and unstructured are the same.
            correlated = columns != [INTERCEPT]
            groups.append(GroupTerm(grouping, tuple(columns), correlated, source))
        else:
            block = tuple(columns)
            groups += [GroupTerm(grouping, (c,), False, source, block) for c in columns]

    if "reml" in global_options and "mle" in global_options:
        raise MlmError(_point(text, "mle", "reml and mle are given together; Stata takes one"))
    for name in ("reml", "mle"):
        if name in global_options:
            reader.notes.append(
                f"Stata's {name} option is noted and set aside: mlm's fit is Bayesian (the "
                "posterior, with the priors written in model.py), not a point estimate"
            )
    if command.split(" ", 1)[0] == "meglm":
        family = _meglm_family(global_options, text)
    for name in ("family", "link"):
        if name in global_options:
            raise MlmError(_point(text, name, f"{name}() belongs to meglm"))
    trials = None
    if "binomial" in global_options:
        if family != "bernoulli":
            raise MlmError(_point(text, "binomial", "binomial() belongs to melogit"))
        trials = _stata_trials(global_options["binomial"], text)
        family = "binomial"
    sigma, residuals = None, global_options.get("residuals")
    if residuals is not None:
        sigma = _stata_residuals(residuals, text)
    return ModelSpec(
        response=response,
        terms=tuple(terms),
        groups=tuple(groups),
        sigma=sigma,
        family=family,
        trials=trials,
        source=text,
        sigma_source="" if sigma is None else f"residuals({residuals})",
    )


def _meglm_family(options: dict[str, str], text: str) -> str:
    """The family meglm's family() and link() options fit (gaussian without them)."""
    raw = options.pop("family", "gaussian")
    written = raw.lower()
    if written not in _MEGLM_FAMILIES:
        raise MlmError(
            _point(
                text,
                raw,
                f"meglm's family({written}) is not supported: use family("
                + "), family(".join(_MEGLM_FAMILIES)
                + "), or melogit ..., binomial(n) for binomial counts",
            )
        )
    family, link = _MEGLM_FAMILIES[written]
    given = options.pop("link", link)
    if given.lower() != link:
        raise MlmError(
            _point(text, given, f"family({written}) is fitted with link({link}), not {given}")
        )
    return family


_OPTION = re.compile(r"([A-Za-z]+)\s*(\((?:[^()]|\([^()]*\))*\))?")
# Stata's options by full name, with the shortest abbreviation Stata accepts.
_OPTIONS = {
    "noconstant": "nocon",
    "covariance": "cov",
    "residuals": "res",
    "binomial": "binomial",
    "family": "family",
    "link": "link",
    "reml": "reml",
    "mle": "mle",
    "nolog": "nolog",
    "or": "or",
    "irr": "irr",
    "variance": "var",
    "stddeviations": "stddev",
}
# Options that do not change the fit (what is displayed): accepted and set aside.
_DISPLAY = ("nolog", "or", "irr", "variance", "stddeviations")
# Options of the whole model, allowed after the fixed part or after the last level.
_GLOBAL = ("residuals", "binomial", "family", "link", "reml", "mle")
_STRUCTURES = {
    "independent": "ind",
    "exchangeable": "ex",
    "identity": "id",
    "unstructured": "un",
}


def _abbreviation(word: str, table: dict[str, str]) -> str | None:
    """The full name `word` abbreviates in `table` (full -> shortest abbreviation)."""
    word = word.lower()
    matches = (f for f, short in table.items() if f.startswith(word) and len(word) >= len(short))
    return next(matches, None)


def _stata_options(part: str, reader: _Reader) -> tuple[str, dict[str, str]]:
    """A varlist and its options (after the comma), by their full Stata names."""
    text = reader.text
    varlist, comma, rest = part.partition(",")
    options: dict[str, str] = {}
    rest = rest.strip()
    while comma and rest:
        match = _OPTION.match(rest)
        if not match:
            raise MlmError(_point(text, rest, f"cannot read the Stata option '{rest}'"))
        name = _abbreviation(match.group(1), _OPTIONS)
        if name is None:
            raise MlmError(
                _point(
                    text,
                    match.group(0),
                    f"the Stata option '{match.group(1)}' is not supported (supported: "
                    "noconstant, covariance(), residuals(), binomial(), family(), link(), "
                    "reml, mle)",
                )
            )
        argument = (match.group(2) or "()")[1:-1].strip()
        if name == "covariance":
            argument = _abbreviation(argument, _STRUCTURES) or argument
        if name not in _DISPLAY:
            options[name] = argument
        rest = rest[match.end() :].strip()
    return varlist.strip(), options


def _no_more(options: dict[str, str], text: str, where: str) -> None:
    if options:
        name = next(iter(options))
        raise MlmError(_point(text, where, f"the option {name}() does not belong here"))


_STATA_PART = re.compile(
    r"(?:(?P<prefix>i|c|ib(?P<base>\d+|\((?:first|last|freq|#\d+)\)))\.)?(?P<name>[A-Za-z_]\w*)"
)


def _stata_terms(token: str, reader: _Reader) -> list[Term]:
    """`x`, `i.c`, `ib2.c`, `c.x`, `a#b`, `a##b` as terms; factors are recorded as categorical.

    A continuous variable interacted with itself is its power: `c.x#c.x` is lme4's I(x^2).
    """
    full = "##" in token
    hidden = token.replace("(#", "(\0")  # ib(#2).x: a level's number, not an interaction
    interacted = "#" in hidden
    # a##b#c: the full factorial of a and b#c.
    groups = [
        _stata_product(group.replace("\0", "#"), token, reader, interacted)
        for group in hidden.split("##")
    ]
    from itertools import combinations

    subsets = [
        [v for group in chosen for v in group]
        for k in range(1, len(groups) + 1 if full else 2)
        for chosen in combinations(groups, k)
    ]
    if not full:
        subsets = [[v for group in groups for v in group]]
    terms = []
    for subset in subsets:
        counts: dict[tuple[str, bool], int] = {}
        for variable in subset:
            counts[variable] = counts.get(variable, 0) + 1
        names = []
        for (name, factor), power in counts.items():
            if factor or power == 1:
                names.append(name)
            else:
                names.append(reader._derived(f"I({name}^{power})", f"{name} ** {power}", (name,)))
        term = Term(tuple(names))
        if term not in terms:
            terms.append(term)
    return terms


def _stata_product(group: str, token: str, reader: _Reader, interacted: bool):
    """The variables of `a#b#c`, each with whether it is a factor."""
    text = reader.text
    variables: list[tuple[str, bool]] = []  # (name, is a factor)
    for part in group.replace("(#", "(\0").split("#"):
        part = part.replace("\0", "#")
        match = _STATA_PART.fullmatch(part)
        if match is None:
            raise MlmError(
                _point(
                    text,
                    token,
                    f"cannot read '{token}': use x, i.x, ib2.x, ib(last).x, c.x, a#b or a##b",
                )
            )
        prefix, name = match.group("prefix") or "", match.group("name")
        # Stata treats an unprefixed variable in an interaction as a factor.
        factor = prefix.startswith("i") or (prefix == "" and interacted)
        if factor:
            reader.categorical.add(name)
        base = match.group("base")
        if base:
            base = base.strip("()")
            reference = (
                Reference(name, level=int(base), source=part)
                if base.isdigit()
                else Reference(name, position=base, source=part)
            )
            reader.reference(reference)
        variables.append((name, factor))
    return variables


def _stata_trials(argument: str, text: str) -> Derived:
    argument = argument.strip()
    if _NAME.match(argument):
        return Derived(argument, argument, (argument,))
    if re.fullmatch(r"\d+", argument):
        return Derived(argument, argument, ())
    raise MlmError(_point(text, argument, "binomial() takes a variable or a whole number"))


def _stata_residuals(argument: str, text: str) -> tuple[Term, ...]:
    match = re.fullmatch(r"\s*(\w+)\s*(?:,\s*by\s*\(\s*(\w+)\s*\))?\s*", argument)
    if not match or _abbreviation(match.group(1), _STRUCTURES) != "independent":
        raise MlmError(
            _point(
                text,
                argument,
                "only residuals(independent, by(column)) is supported: "
                "one residual SD per level of a column",
            )
        )
    if match.group(2) is None:
        return (INTERCEPT,)
    # by(v) with v a 0/1 or categorical column is one SD per level, as in Stata; v is not
    # made categorical elsewhere, so `by(tx)` reads like lme4's `--sigma "~ tx"`.
    return (INTERCEPT, Term((match.group(2),)))
