"""The model side of prediction: which variable is the likelihood, which effects meet levels
the fit never saw, and one compiled function that draws predictions from the trace.

A model built on the training rows plus the new rows (`build(data + newdata)`) has every
fitted level in its coords, and maybe some new ones. Each free variable is fed from the
trace by label. Where its coords hold labels the trace lacks (a new school, a new therapy
group), the variable is drawn afresh from its own distribution given the posterior draws
of its parents, and the labels the trace has are then overwritten with their posterior
draws. Non-centred effects (z ~ N(0, 1), u = z * sigma), correlated ones (z @ chol.T) and
centred ones (u ~ N(0, sigma)) all come out as draws from the fitted population
distribution: brms' `sample_new_levels = "gaussian"`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.traversal import ancestors, io_toposort
from pytensor.scalar.basic import Cast, Identity, Mul, Neg, TrueDiv
from pytensor.tensor.basic import Join
from pytensor.tensor.blockwise import Blockwise
from pytensor.tensor.elemwise import DimShuffle, Elemwise
from pytensor.tensor.math import Dot
from pytensor.tensor.shape import Reshape, SpecifyShape
from pytensor.tensor.subtensor import AdvancedSubtensor, Subtensor

from mlm.errors import MlmError

# What a hand-written model needs so that mlm can predict from it.
CONVENTION = (
    "mlm predicts by calling build() on the training rows plus the new rows, so build(data) "
    "must take everything row-wise from `data`: predictors and group indices in pm.Data (or "
    "arrays computed from `data` inside build), coords of the group effects from the data's "
    "levels (pd.factorize(data[col], sort=True)), and dims on the likelihood, whose first dim "
    "is the rows (pm.Normal('y', ..., observed=y_, dims='obs'))."
)


def likelihood(model, observed: str | None = None):
    """The observed variable to predict, and its row dim (the first of its dims)."""
    rvs = {rv.name: rv for rv in model.observed_RVs}
    if observed is None:
        if len(rvs) != 1:
            names = ", ".join(sorted(rvs)) or "none"
            raise MlmError(
                f"cannot tell which outcome to predict: the model has {len(rvs)} observed "
                f"variables ({names}); name one with observed=..."
            )
        observed = next(iter(rvs))
    if observed not in rvs:
        raise MlmError(
            f"the model has no observed variable {observed!r}; it has {', '.join(sorted(rvs))}"
        )
    rv = rvs[observed]
    dims = model.named_vars_to_dims.get(observed)
    if not dims or dims[0] is None:
        raise MlmError(
            f"cannot predict: the likelihood {observed!r} has no dims, so its rows cannot be "
            f"told apart. {CONVENTION}"
        )
    return rv, dims[0]


def row_count(model, row_dim: str) -> int:
    """The number of rows (length of the row dim) of a built model."""
    length = model.dim_lengths[row_dim]
    return int(length.get_value() if hasattr(length, "get_value") else length.eval())


@dataclass
class Feed:
    """How one free variable of the new model gets its values from the trace.

    take: per axis, the trace position of each label of the new model (-1: a label the
    trace lacks). fresh is True when some label is new, so the variable is drawn afresh
    and its seen labels (seen: the new model's positions of them, per axis) overwritten.
    """

    name: str
    take: tuple[np.ndarray, ...]
    fresh: bool
    # new_levels="uncertainty": per axis with new labels, the trace position each new label
    # borrows in each draw, shaped (sample, number of new labels).
    borrow: dict[int, np.ndarray] | None = None

    def seen(self) -> tuple[np.ndarray, ...]:
        return tuple(np.flatnonzero(t >= 0) for t in self.take)

    def values(self, posterior) -> np.ndarray:
        """The trace's draws for the labels it has, shaped (sample, *new model's axes)."""
        array = posterior[self.name].to_numpy()
        array = array.reshape((-1, *array.shape[2:]))
        for axis, take in enumerate(self.take):
            if self.borrow and axis in self.borrow:
                index = np.repeat(take[None, :], array.shape[0], axis=0)
                index[:, take < 0] = self.borrow[axis]
                shape = [1] * array.ndim
                shape[0], shape[axis + 1] = index.shape
                array = np.take_along_axis(array, index.reshape(shape), axis=axis + 1)
            else:
                array = np.take(array, take[take >= 0], axis=axis + 1)
        return array


def borrow_levels(model, feed_list: list[Feed], posterior, seed) -> None:
    """brms' sample_new_levels="uncertainty" (bambi's sample_new_groups): in each draw, each
    new label takes the posterior draw of a fitted label picked at random, the same pick for
    every variable along that dim (an intercept and slope of one group move together)."""
    rng = np.random.default_rng(seed)
    picks: dict[str, np.ndarray] = {}
    samples = posterior.sizes["chain"] * posterior.sizes["draw"]
    for feed in feed_list:
        if not feed.fresh:
            continue
        dims = model.named_vars_to_dims.get(feed.name) or ()
        feed.borrow = {}
        for axis, (dim, take) in enumerate(zip(dims, feed.take, strict=True)):
            if (take < 0).any():
                if dim not in picks:
                    fitted = posterior[feed.name].sizes[dim]
                    picks[dim] = rng.integers(0, fitted, size=(samples, int((take < 0).sum())))
                feed.borrow[axis] = picks[dim]
        feed.fresh = False


def feeds(model, posterior) -> list[Feed]:
    """Match every free variable of the new model to the trace, label by label."""
    missing = [rv.name for rv in model.free_RVs if rv.name not in posterior]
    if missing:
        raise MlmError(
            f"the trace has no draws of {', '.join(missing)}, which the model built on the new "
            "data has: the trace was not sampled from this model"
        )
    shapes = model.eval_rv_shapes()
    result = []
    for rv in model.free_RVs:
        drawn = posterior[rv.name]
        trace_shape = drawn.shape[2:]
        dims = model.named_vars_to_dims.get(rv.name) or (None,) * len(trace_shape)
        shape = shapes[rv.name]
        if len(shape) != len(trace_shape):
            raise MlmError(
                f"{rv.name} has {len(shape)} axes in the model built on the new data but "
                f"{len(trace_shape)} in the trace: the trace was not sampled from this model"
            )
        take = []
        for axis, dim in enumerate(dims):
            if dim is None or dim not in drawn.dims:
                if shape[axis] != trace_shape[axis]:
                    raise MlmError(
                        f"cannot predict: {rv.name}'s axis {axis} has no dims, and its length "
                        f"is {shape[axis]} with the new data but {trace_shape[axis]} in the "
                        f"trace, so its entries cannot be matched by label. {CONVENTION}"
                    )
                take.append(np.arange(shape[axis]))
                continue
            fitted = {str(label): i for i, label in enumerate(drawn.coords[dim].to_numpy())}
            labels = [str(label) for label in model.coords[dim]]
            take.append(np.array([fitted.get(label, -1) for label in labels], dtype=int))
        result.append(Feed(rv.name, tuple(take), any((t < 0).any() for t in take)))
    return result


def new_labels(model, feed: Feed) -> dict[str, list[str]]:
    """The labels, per dim, that a variable has in the new model and not in the trace."""
    dims = model.named_vars_to_dims.get(feed.name) or ()
    return {
        dim: [str(model.coords[dim][i]) for i in np.flatnonzero(take < 0)]
        for dim, take in zip(dims, feed.take, strict=True)
        if dim is not None and (take < 0).any()
    }


def check_population(model, outputs, feed: Feed) -> None:
    """Refuse new labels of a variable that is not drawn from a fitted population.

    A group effect's new level is drawn from the population the fit estimated: the
    variable's distribution depends on fitted parameters (centred, u ~ N(0, sigma_u)), or
    it is scaled by them before it reaches the likelihood (non-centred, u = z * sigma_u,
    or z @ chol.T). A new level of anything else (a fixed effect's factor level, one sigma
    per level) would be a draw from a fixed prior: brms and bambi refuse it too.
    """
    rv = model[feed.name]
    free = set(model.free_RVs)
    others = free - {rv}

    def fitted(var) -> bool:
        return any(a in others for a in ancestors([var], blockers=list(others)))

    params = [i for i in rv.owner.inputs if not isinstance(i.type, pt.random.type.RandomType)]
    if any(fitted(p) for p in params):
        return
    if _scaled_by_fitted(rv, outputs, fitted):
        return
    labels = new_labels(model, feed)
    where = "; ".join(
        f"{dim.removesuffix('_effect').removesuffix('_level')} = {', '.join(names)}"
        for dim, names in labels.items()
    )
    raise MlmError(
        f"cannot predict for a level the fit never saw ({where}): {feed.name} holds "
        "population-level (fixed) effects, one per level in the data, so the fit says nothing "
        "about a new one (lme4, brms and bambi refuse it too). Give newdata only levels that "
        "are in the data; group effects (u_*) can take new levels, drawn from the population "
        "the fit estimated."
    )


def _scaled_by_fitted(rv, outputs, fitted) -> bool:
    """Whether rv meets a product with a fitted quantity before it is added to anything."""
    nodes = io_toposort(list(pytensor.graph.traversal.graph_inputs(outputs)), outputs)
    clients: dict = {}
    for node in nodes:
        for inp in node.inputs:
            clients.setdefault(inp, []).append(node)
    stack, seen = [rv], set()
    while stack:
        var = stack.pop()
        if var in seen:
            continue
        seen.add(var)
        for node in clients.get(var, []):
            op = node.op
            others = [i for i in node.inputs if i is not var]
            scalar = op.scalar_op if isinstance(op, Elemwise) else None
            product = (
                isinstance(scalar, Mul)
                or isinstance(op, Dot)
                or (isinstance(op, Blockwise) and isinstance(op.core_op, Dot))
            )
            divided = isinstance(scalar, TrueDiv) and node.inputs[0] is var
            if product or divided:
                if any(fitted(o) for o in others):
                    return True
                stack.extend(node.outputs)
            elif isinstance(scalar, Neg | Identity | Cast) or isinstance(
                op,
                DimShuffle | Subtensor | AdvancedSubtensor | Reshape | SpecifyShape | Join,
            ):
                stack.extend(node.outputs)
    return False


def compile_draws(model, outputs, feed_list: list[Feed], seed):
    """A function of the trace's values (one draw) returning the outputs.

    Free variables fed wholly from the trace become inputs; those with new labels are
    drawn from their distribution (given their parents' inputs) and their seen labels
    overwritten by inputs. Every other random variable in the outputs' graph (the
    likelihood) is drawn. Returns the compiled function and the feeds it takes, in order.
    """
    fg = FunctionGraph(outputs=list(outputs), clone=False)
    present = set(fg.variables)
    replacements, inputs, taken = [], [], []
    for feed in feed_list:
        rv = model[feed.name]
        if rv not in present:
            continue
        if feed.fresh:
            node = rv.owner.clone()
            drawn = node.outputs[rv.owner.outputs.index(rv)]
            seen = feed.seen()
            value = pt.tensor(f"{feed.name}_seen", dtype=rv.dtype, shape=(None,) * rv.ndim)
            index = np.ix_(*seen) if rv.ndim > 1 else seen
            mixed = pt.set_subtensor(drawn[index], value)
            replacements.append((rv, mixed))
        else:
            value = rv.type()
            value.name = feed.name
            replacements.append((rv, value))
        inputs.append(value)
        taken.append(feed)
    # Latest first: a variable drawn afresh keeps its parents, which are replaced after it.
    order = {node: i for i, node in enumerate(fg.toposort())}
    replacements.sort(key=lambda pair: order.get(pair[0].owner, -1), reverse=True)
    fg.replace_all(replacements, import_missing=True)

    from pymc.pytensorf import compile as pm_compile

    function = pm_compile(inputs, fg.outputs, random_seed=seed, on_unused_input="ignore")
    return function, taken
