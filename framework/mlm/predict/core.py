"""predict(): posterior draws of the expected outcome or of new observations for new rows."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import xarray as xr
from pytensor.graph.traversal import graph_inputs

from mlm.errors import MlmError
from mlm.predict import graph

KINDS = ("response", "mean")
NEW_LEVELS = ("gaussian", "uncertainty")
# Draws of the training rows compared between the model built on the data alone and the one
# built on data + newdata: the expected outcome of a training row must not change.
CHECK_DRAWS = 3


def predict(
    build: Callable,
    data: pd.DataFrame,
    newdata: pd.DataFrame,
    idata,
    kind: str = "response",
    *,
    seed=None,
    observed: str | None = None,
    new_levels: str = "gaussian",
) -> xr.DataArray:
    """Posterior draws (chain, draw, row) for the rows of `newdata`, from a fitted trace.

    kind="mean" gives the expected outcome of each row (the mean of the likelihood given
    its parameters: mu for a Normal, p for a Bernoulli, the rate for a Poisson), and
    kind="response" new observations drawn from the likelihood. Nothing is resampled:
    each posterior draw in `idata` gives one draw of the predictions. Levels of a group
    effect that the fit never saw are drawn from the fitted population distribution, one
    draw per posterior draw (brms' sample_new_levels="gaussian"). `build` is the
    project's build(data); `data` the data the trace was fitted on; `observed` names the
    likelihood when the model has several. Columns of `data` that newdata lacks (the
    outcome) are filled with stand-in values; a missing predictor is an error.

    new_levels="uncertainty" draws a new level's effects as brms' sample_new_levels =
    "uncertainty" and bambi's sample_new_groups do: in each draw, those of a fitted level
    picked at random.
    """
    if kind not in KINDS:
        raise MlmError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    draws = predict_draws(
        build,
        data,
        newdata,
        idata,
        kinds=(kind,),
        seed=seed,
        observed=observed,
        new_levels=new_levels,
    )
    return draws[kind]


def predict_draws(
    build: Callable,
    data: pd.DataFrame,
    newdata: pd.DataFrame,
    idata,
    kinds=KINDS,
    *,
    seed=None,
    observed: str | None = None,
    new_levels: str = "gaussian",
) -> dict[str, xr.DataArray]:
    """The draws of each of `kinds` ("mean", "response"), from the same posterior draws."""
    if new_levels not in NEW_LEVELS:
        raise MlmError(f"new_levels must be one of {', '.join(NEW_LEVELS)}, not {new_levels!r}")
    posterior = posterior_dataset(idata)
    if len(newdata) == 0:
        raise MlmError("newdata has no rows to predict")
    fitted_model = build_on(build, data, "the data")
    fitted_rv, row_dim = graph.likelihood(fitted_model, observed)
    n_train = graph.row_count(fitted_model, row_dim)

    combined = combine(data, newdata)
    model = build_on(build, combined, "the data plus the new rows")
    rv, row_dim = graph.likelihood(model, fitted_rv.name)
    check_filled(build, data, newdata, model, row_dim)
    n_rows = graph.row_count(model, row_dim)
    if n_rows != n_train + len(newdata):
        raise MlmError(
            f"cannot predict: build() on the data plus {len(newdata)} new rows gives "
            f"{fitted_rv.name} {n_rows} rows, not {n_train} + {len(newdata)}. "
            f"{graph.CONVENTION}"
        )

    feeds = graph.feeds(model, posterior)
    mean = expected_value(rv, required="mean" in kinds)
    for feed in feeds:
        if feed.fresh:
            graph.check_population(model, [rv, mean], feed)
    if new_levels == "uncertainty":
        graph.borrow_levels(model, feeds, posterior, seed)
    function, taken = graph.compile_draws(model, [mean, rv[n_train:]], feeds, seed)
    values = [feed.values(posterior) for feed in taken]

    chains, samples = posterior.sizes["chain"], posterior.sizes["chain"] * posterior.sizes["draw"]
    means, responses, training = [], [], []
    for i in range(samples):
        try:
            mean_i, response_i = function(*(v[i] for v in values))
        except Exception as exc:
            raise MlmError(
                f"cannot predict: evaluating {rv.name} on the new rows failed: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}. "
                f"{graph.CONVENTION}"
            ) from exc
        mean_i = by_row(mean_i, n_rows)
        means.append(mean_i[n_train:])
        responses.append(response_i)
        if i < CHECK_DRAWS:
            training.append(mean_i[:n_train].copy())
    check_training_rows(fitted_model, fitted_rv, posterior, np.array(training))

    dims = model.named_vars_to_dims[rv.name]
    result = {}
    for name, array in (("mean", means), ("response", responses)):
        if name not in kinds:
            continue
        array = np.stack(array)
        array = array.reshape((chains, samples // chains, *array.shape[1:]))
        extra = [dim if dim is not None else f"{rv.name}_dim_{i}" for i, dim in enumerate(dims)]
        extra = extra[1 : array.ndim - 2]
        coords = {
            "chain": posterior.coords["chain"].to_numpy(),
            "draw": posterior.coords["draw"].to_numpy(),
            "row": newdata.index.to_numpy(),
        }
        coords.update({dim: list(model.coords[dim]) for dim in extra if dim in model.coords})
        result[name] = xr.DataArray(
            array,
            dims=("chain", "draw", "row", *extra),
            coords=coords,
            name=rv.name,
            attrs={"kind": name},
        )
    return result


def by_row(value, n: int) -> np.ndarray:
    """A value of the likelihood's parameters with its first axis the n rows (broadcast)."""
    value = np.asarray(value)
    if value.ndim == 0:
        return np.broadcast_to(value, (n,))
    if value.shape[0] == 1:
        return np.broadcast_to(value, (n, *value.shape[1:]))
    if value.shape[0] != n:  # a parameter shared by every row
        return np.broadcast_to(value, (n, *value.shape))
    return value


def posterior_dataset(idata) -> xr.Dataset:
    """The posterior group of a trace (an xarray DataTree, or a Dataset of draws)."""
    if isinstance(idata, xr.Dataset):
        return idata
    try:
        posterior = idata["posterior"]
    except (KeyError, TypeError):
        raise MlmError("the trace has no posterior group to predict from") from None
    return posterior.to_dataset() if hasattr(posterior, "to_dataset") else posterior


def build_on(build: Callable, frame: pd.DataFrame, what: str):
    """build(frame), with a failure reported as an MlmError naming what it was built on."""
    try:
        return build(frame)
    except Exception as exc:
        raise MlmError(
            f"cannot predict: build() failed on {what}: {type(exc).__name__}: {exc}. "
            f"{graph.CONVENTION}"
        ) from exc


def combine(data: pd.DataFrame, newdata: pd.DataFrame, fill: dict | None = None) -> pd.DataFrame:
    """The training rows followed by the new ones, newdata's missing columns filled.

    A column newdata lacks (the outcome, usually) gets the value of a training row: the
    first, or the one `fill` gives for that column. A categorical column keeps its
    categories (widened by new levels).
    """
    fill = fill or {}
    newdata = newdata.copy()
    for column in data.columns:
        if column not in newdata:
            newdata[column] = data[column].iloc[fill.get(column, 0)]
    newdata = newdata[list(data.columns) + [c for c in newdata.columns if c not in data.columns]]
    for column in data.columns:
        if isinstance(data[column].dtype, pd.CategoricalDtype):
            categories = list(data[column].cat.categories)
            extra = [v for v in pd.unique(newdata[column].dropna()) if v not in categories]
            dtype = pd.CategoricalDtype(categories + extra, ordered=data[column].cat.ordered)
            newdata[column] = newdata[column].astype(object).astype(dtype)
            data = data.assign(**{column: data[column].astype(dtype)})
    return pd.concat([data, newdata], ignore_index=True)


def check_filled(build, data, newdata, model, row_dim: str) -> None:
    """Refuse a missing column of newdata that the model uses other than as the outcome.

    The model is built again with another stand-in value in each missing column in turn;
    every pm.Data but the likelihood's observed values, and every coord but the rows'
    labels, must stay the same.
    """
    missing = [c for c in data.columns if c not in newdata.columns]
    # The likelihood's observed values (a pm.Data, maybe behind a cast to integers).
    values = [model.rvs_to_values[rv] for rv in model.observed_RVs]
    observed = {var.name for var in graph_inputs(values)} | {var.name for var in values}
    used = {}
    for column in missing:
        values = data[column].to_numpy()
        other = np.flatnonzero(values != values[0])
        if not other.size:
            continue
        changed = combine(data, newdata, fill={column: int(other[0])})
        inputs = changed_inputs(model, build_on(build, changed, "the data plus the new rows"))
        skip = observed | {f"coords {row_dim!r}"}
        inputs = [name for name in inputs if name not in skip]
        if inputs:
            used[column] = inputs
    if used:
        names = "; ".join(f"{c} (in {', '.join(i)})" for c, i in used.items())
        raise MlmError(
            f"newdata lacks column(s) the model uses as predictors: {names}. Give newdata "
            "every predictor column (only the outcome may be left out)"
        )


def changed_inputs(model, other) -> list[str]:
    """The pm.Data and coords that differ between two builds of a model."""
    changed = []
    for var in model.data_vars:
        if var.name not in other.named_vars or not np.array_equal(
            var.get_value(), other[var.name].get_value()
        ):
            changed.append(var.name)
    for dim, labels in model.coords.items():
        if list(map(str, labels or ())) != list(map(str, other.coords.get(dim) or ())):
            changed.append(f"coords {dim!r}")
    return changed


def expected_value(rv, required: bool = True):
    """The mean of the likelihood's distribution given its parameters, as a graph.

    When the mean is not required (only new observations are) and PyMC has none for this
    distribution, its first parameter stands in, for the check of the training rows.
    """
    from pymc.distributions.moments.means import mean

    try:
        return mean(rv)
    except Exception as exc:
        if not required:
            params = [i for i in rv.owner.inputs[2:] if i.ndim <= rv.ndim]
            if params:
                return params[0]
        raise MlmError(
            f"cannot compute the expected value of {rv.name}: PyMC has no mean for "
            f"{rv.owner.op} ({exc}); kind='response' still works"
        ) from exc


def check_training_rows(model, rv, posterior, predicted: np.ndarray) -> None:
    """The expected outcome of training rows must not change when new rows are added.

    It would if build() computed something from the whole data (standardizing by the
    data's mean and SD, coords not taken from the data, ...): the new rows would then be
    predicted on another scale or with another group's effect.
    """
    mean = expected_value(rv, required=False)
    feeds = graph.feeds(model, posterior)
    if any(feed.fresh for feed in feeds):
        raise MlmError("the trace does not match the model built on the data it was fitted on")
    function, taken = graph.compile_draws(model, [mean], feeds, seed=0)
    values = [feed.values(posterior) for feed in taken]
    n = predicted.shape[1]
    for i, row in enumerate(predicted):
        (fitted,) = function(*(v[i] for v in values))
        fitted = by_row(fitted, n)
        if not np.allclose(fitted, row, rtol=1e-6, atol=1e-9):
            gap = np.abs(fitted - row).reshape(n, -1).max(axis=1)
            worst = int(np.argmax(gap))
            was, now = np.ravel(fitted[worst])[0], np.ravel(row[worst])[0]
            raise MlmError(
                "cannot predict: adding the new rows changes the expected outcome of the "
                f"training rows (row {worst}: {was:.6g} becomes {now:.6g}), "
                "so build() computes something from the whole data (a standardization, coords "
                f"or indices not taken from the data). {graph.CONVENTION}"
            )
