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

FAMILIES = ("gaussian", "student_t", "bernoulli", "poisson")
# Stata's multilevel commands and the family each one fits.
STATA_COMMANDS = {"mixed": "gaussian", "melogit": "bernoulli", "mepoisson": "poisson"}
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
    `correlated` gives them one covariance matrix, as lme4's `|` does.
    """

    factor: tuple[str, ...]
    terms: tuple[Term, ...]
    correlated: bool
    source: str = field(default="", compare=False)

    @property
    def factor_label(self) -> str:
        return ":".join(self.factor)

    @property
    def label(self) -> str:
        """The term in lme4 syntax, `(0 + x | g)`, whichever syntax it was written in."""
        lhs = " + ".join(t.label for t in self.terms)
        if INTERCEPT not in self.terms:
            lhs = f"0 + {lhs}"
        return f"({lhs} | {self.factor_label})"


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
    categorical: frozenset[str] = field(default_factory=frozenset)  # forced (Stata i.)
    source: str = field(default="", compare=False)
    sigma_source: str = field(default="", compare=False)
    priors: tuple[Prior, ...] = ()  # --prior overrides of the generated default priors

    @property
    def variables(self) -> list[str]:
        """Every column the model reads, response first, each once."""
        names = [self.response]
        for term in self.terms + tuple(t for g in self.groups for t in g.terms):
            names += term.variables
        for group in self.groups:
            names += group.factor
        for term in self.sigma or ():
            names += term.variables
        return list(dict.fromkeys(names))


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
    if first in STATA_COMMANDS:
        spec = _parse_stata(text)
    elif "~" in text:
        spec = _parse_lme4(text)
    else:
        raise MlmError(
            f"cannot read the formula {formula!r}: write it as lme4 does ('y ~ x + (1 | g)') "
            f"or as a Stata command ({', '.join(STATA_COMMANDS)} y x || g:)"
        )
    if family is not None:
        if family not in FAMILIES:
            raise MlmError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
        if first in STATA_COMMANDS and family != STATA_COMMANDS[first]:
            raise MlmError(
                f"--family {family} contradicts Stata's {first}, which fits {STATA_COMMANDS[first]}"
            )
        spec = _replace(spec, family=family)
    if sigma is not None:
        if spec.sigma is not None:
            raise MlmError("the residual scale is given twice: by --sigma and by residuals()")
        spec = _replace(spec, sigma=_parse_sigma(sigma), sigma_source=" ".join(sigma.split()))
    if spec.sigma is not None and spec.family not in ("gaussian", "student_t"):
        raise MlmError(
            f"a residual scale model (--sigma) needs a family with a scale: gaussian or "
            f"student_t, not {spec.family}"
        )
    _validate_groups(spec)
    if priors:
        spec = _replace(spec, priors=_parse_priors(priors))
    return spec


def lme4_formula(spec: ModelSpec) -> str:
    """The spec written as lme4 would: one line, whatever syntax it was parsed from."""
    parts = [] if INTERCEPT in spec.terms else ["0"]
    parts += [t.label for t in spec.terms if not t.is_intercept]
    blocks: list[tuple[tuple[str, ...], list[GroupTerm]]] = []
    for group in spec.groups:
        for factor, members in blocks:
            if factor == group.factor and not group.correlated and not members[0].correlated:
                members.append(group)
                break
        else:
            blocks.append((group.factor, [group]))
    for factor, members in blocks:
        columns = [t for g in members for t in g.terms]
        lhs = " + ".join(t.label for t in columns)
        if INTERCEPT not in columns:
            lhs = f"0 + {lhs}"
        bar = "||" if len(members) > 1 else "|"
        parts.append(f"({lhs} {bar} {':'.join(factor)})")
    return f"{spec.response} ~ {' + '.join(parts) or '1'}"


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


# lme4 ----------------------------------------------------------------------------------


def _parse_lme4(text: str) -> ModelSpec:
    if text.count("~") != 1:
        raise MlmError(f"the formula {text!r} must have exactly one '~' (response ~ terms)")
    lhs, rhs = (part.strip() for part in text.split("~"))
    if not _NAME.match(lhs):
        raise MlmError(f"the response {lhs!r} must be one column name (transform it in data.py)")
    fixed, bars = _split_bars(rhs, text)
    # Each group term becomes a stand-in name for formulae, whose terms are then dropped.
    stand_ins = [f"mlm_bar_{i}" for i in range(len(bars))]
    for stand_in, (start, end, _) in reversed(list(zip(stand_ins, bars, strict=True))):
        fixed = fixed[:start] + stand_in + fixed[end:]
    terms = [t for t in _terms(f"{lhs} ~ {fixed}", text) if not set(t.variables) & set(stand_ins)]
    groups: list[GroupTerm] = []
    for _, _, block in bars:
        groups += _group_terms(block, text)
    return ModelSpec(response=lhs, terms=tuple(terms), groups=tuple(groups), source=text)


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
    outside = rhs
    for start, end, _ in reversed(bars):
        outside = outside[:start] + outside[end:]
    if "|" in outside:
        raise MlmError(
            _point(text, "|", "a group term must be in parentheses, as in (1 + x | group)")
        )
    return rhs, bars


def _group_terms(block: str, text: str) -> list[GroupTerm]:
    source = f"({block.strip()})"
    double = "||" in block
    lhs, _, rhs = block.partition("||" if double else "|")
    if not lhs.strip() or not rhs.strip() or "|" in rhs:
        raise MlmError(_point(text, source, f"{source} must read (terms | grouping column)"))
    description = _description(f"mlm_response ~ {lhs}", text, source)
    columns = [INTERCEPT] if _has_intercept(description) else []
    columns += _plain_terms(description, text, source)
    if not columns:
        raise MlmError(_point(text, source, f"{source} has no term that varies by group"))
    factors = _plain_terms(_description(f"mlm_response ~ 0 + {rhs}", text, source), text, source)
    groups = []
    for factor in factors:
        if double:
            groups += [GroupTerm(factor.variables, (c,), False, source) for c in columns]
        else:
            groups.append(GroupTerm(factor.variables, tuple(columns), len(columns) > 1, source))
    return groups


def _parse_sigma(sigma: str) -> tuple[Term, ...]:
    text = " ".join(sigma.split())
    if not text.startswith("~"):
        raise MlmError(f"--sigma {sigma!r} must be a one-sided formula, such as '~ condition'")
    if "|" in text:
        raise MlmError(_point(text, "|", "--sigma takes no group terms"))
    description = _description(f"mlm_response {text}", text, text)
    terms = [INTERCEPT] if _has_intercept(description) else []
    return tuple(terms + _plain_terms(description, text, text))


def _terms(formula: str, text: str) -> list[Term]:
    description = _description(formula, text, formula)
    intercept = [INTERCEPT] if _has_intercept(description) else []
    return intercept + _plain_terms(description, text, formula)


def _description(formula: str, text: str, where: str):
    import formulae

    try:
        return formulae.model_description(formula)
    except Exception as exc:
        raise MlmError(_point(text, where, f"cannot parse {where.strip()!r}: {exc}")) from None


def _has_intercept(description) -> bool:
    return any(type(t).__name__ == "Intercept" for t in description.terms)


def _plain_terms(description, text: str, where: str) -> list[Term]:
    """The description's terms as products of column names; calls are refused."""
    terms = []
    for term in description.terms:
        kind = type(term).__name__
        if kind == "Intercept":
            continue
        if kind != "Term":
            raise MlmError(_point(text, where, f"{where.strip()!r}: unexpected {kind}"))
        names = []
        for component in term.components:
            if type(component).__name__ != "Variable":
                raise MlmError(
                    _point(
                        text,
                        component.name,
                        f"'{component.name}' is a function call; mlm reads plain column "
                        "names only (compute the column in data.py)",
                    )
                )
            names.append(component.name)
        terms.append(Term(tuple(names)))
    return terms


def _point(text: str, fragment: str, message: str) -> str:
    """`message`, then the formula with a caret line under `fragment`."""
    at = text.find(fragment.strip()) if fragment.strip() else -1
    if at < 0:
        return f"{message}\n  in: {text}"
    marks = " " * at + "^" * max(1, len(fragment.strip()))
    return f"{message}\n  in: {text}\n      {marks}"


def _validate_groups(spec: ModelSpec) -> None:
    seen: dict[tuple, str] = {}
    for group in spec.groups:
        for term in group.terms:
            key = (group.factor, term)
            if key in seen:
                raise MlmError(
                    f"'{term.label}' varies by {group.factor_label} twice, in {seen[key]} "
                    f"and in {group.source}; keep one"
                )
            seen[key] = group.source


# Stata ---------------------------------------------------------------------------------


def _parse_stata(text: str) -> ModelSpec:
    """`mixed y x i.c c.x#i.c || a: x, nocons cov(unstructured) || b: , residuals(...)`."""
    command, *levels = (part.strip() for part in text.split("||"))
    family = STATA_COMMANDS[command.split(" ", 1)[0]]
    fixed, options = _stata_options(command.split(" ", 1)[1] if " " in command else "", text)
    residuals = options.pop("residuals", None)
    names = fixed.split()
    if not names:
        raise MlmError(_point(text, command, "the Stata command names no dependent variable"))
    response, *predictors = names
    categorical: set[str] = set()
    terms = [] if _nocons(options, text) else [INTERCEPT]
    for token in predictors:
        terms += [t for t in _stata_terms(token, categorical, text) if t not in terms]
    _no_more(options, text, command)

    groups, nested = [], []
    for level in levels:
        head, colon, rest = level.partition(":")
        factor = head.strip()
        if not colon or not _NAME.match(factor):
            raise MlmError(_point(text, level, f"'|| {level}' must read '|| group: [slopes]'"))
        if factor == "_all":
            raise MlmError(
                _point(
                    text,
                    level,
                    "Stata's _all: R.x form is not supported; write the "
                    "crossed groups as lme4 terms, (1 | a) + (1 | b)",
                )
            )
        varlist, level_options = _stata_options(rest, text)
        if "residuals" in level_options:
            if residuals is not None:
                raise MlmError(_point(text, "residuals", "residuals() is given twice"))
            residuals = level_options.pop("residuals")
        columns = [] if _nocons(level_options, text) else [INTERCEPT]
        for token in varlist.split():
            columns += [t for t in _stata_terms(token, categorical, text) if t not in columns]
        structure = level_options.pop("covariance", "independent")
        _no_more(level_options, text, level)
        if structure not in ("independent", "unstructured"):
            raise MlmError(
                _point(
                    text,
                    structure,
                    f"covariance({structure}) is not supported; use "
                    "independent (Stata's default) or unstructured",
                )
            )
        if not columns:
            raise MlmError(_point(text, level, f"'|| {level}' has no effect that varies"))
        nested.append(factor)
        source = f"|| {level}"
        if structure == "unstructured" and len(columns) > 1:
            groups.append(GroupTerm(tuple(nested), tuple(columns), True, source))
        else:
            groups += [GroupTerm(tuple(nested), (c,), False, source) for c in columns]

    sigma = None
    if residuals is not None:
        sigma = _stata_residuals(residuals, categorical, text)
    return ModelSpec(
        response=response,
        terms=tuple(terms),
        groups=tuple(groups),
        sigma=sigma,
        family=family,
        categorical=frozenset(categorical),
        source=text,
        sigma_source="" if sigma is None else f"residuals({residuals})",
    )


_OPTION = re.compile(r"([A-Za-z]+)\s*(\((?:[^()]|\([^()]*\))*\))?")
_OPTION_NAMES = {
    "nocons": "noconstant",
    "noconstant": "noconstant",
    "nocon": "noconstant",
    "cov": "covariance",
    "covariance": "covariance",
    "covar": "covariance",
    "res": "residuals",
    "resid": "residuals",
    "residuals": "residuals",
    "reml": "reml",
    "mle": "mle",
}
_STRUCTURES = {
    "ind": "independent",
    "independent": "independent",
    "un": "unstructured",
    "unstructured": "unstructured",
    "exchangeable": "exchangeable",
    "identity": "identity",
}


def _stata_options(part: str, text: str) -> tuple[str, dict[str, str]]:
    """A varlist and its options (after the comma), by their full Stata names."""
    varlist, comma, rest = part.partition(",")
    options: dict[str, str] = {}
    rest = rest.strip()
    while comma and rest:
        match = _OPTION.match(rest)
        if not match:
            raise MlmError(_point(text, rest, f"cannot read the Stata option '{rest}'"))
        name = _OPTION_NAMES.get(match.group(1).lower())
        if name is None:
            raise MlmError(
                _point(
                    text,
                    match.group(0),
                    f"the Stata option '{match.group(1)}' is not "
                    "supported (supported: noconstant, covariance(), residuals())",
                )
            )
        argument = (match.group(2) or "()")[1:-1].strip()
        if name == "covariance":
            argument = _STRUCTURES.get(argument.lower(), argument)
        options[name] = argument
        rest = rest[match.end() :].strip()
    options.pop("reml", None)  # the estimator; a Bayesian fit has its own
    options.pop("mle", None)
    return varlist.strip(), options


def _nocons(options: dict[str, str], text: str) -> bool:
    return options.pop("noconstant", None) is not None


def _no_more(options: dict[str, str], text: str, where: str) -> None:
    if options:
        name = next(iter(options))
        raise MlmError(_point(text, where, f"the option {name}() does not belong here"))


def _stata_terms(token: str, categorical: set[str], text: str) -> list[Term]:
    """`x`, `i.c`, `c.x`, `a#b`, `a##b` as terms; i. columns are recorded as categorical."""
    full = "##" in token
    parts = token.split("##") if full else token.split("#")
    names = []
    for part in parts:
        prefix, dot, name = part.rpartition(".")
        if not dot:
            prefix, name = "", part
        if prefix not in ("", "i", "c") or not _NAME.match(name):
            raise MlmError(
                _point(text, token, f"cannot read '{token}': use x, i.x, c.x, a#b or a##b")
            )
        # Stata treats an unprefixed variable in an interaction as a factor.
        if prefix == "i" or (prefix == "" and len(parts) > 1):
            categorical.add(name)
        names.append(name)
    if not full:
        return [Term(tuple(names))]
    from itertools import combinations

    return [Term(c) for k in range(1, len(names) + 1) for c in combinations(names, k)]


def _stata_residuals(argument: str, categorical: set[str], text: str) -> tuple[Term, ...]:
    match = re.fullmatch(r"\s*(\w+)\s*(?:,\s*by\s*\(\s*(\w+)\s*\))?\s*", argument)
    if not match or _STRUCTURES.get(match.group(1).lower()) != "independent":
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
