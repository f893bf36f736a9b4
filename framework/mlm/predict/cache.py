"""A project's predictions and comparisons, drawn from its cached trace and cached themselves.

`mlm predict`, `Project.predict`, `Project.compare_predictions` and the `predict` a figure
asks for all come here. The trace is the variant's current one: read from the store when
fresh, fitted first (as `mlm run fit` would, saying so) only when it is stale; nothing else
ever samples. The draws are stored under `.mlm/predict/<variant>/<key>/draws.nc`, where the
key hashes the trace's key (which holds the model's code, the data and the fit settings),
the new rows' content (mlm.fingerprint.data_fingerprint), what is asked (kind, or the
comparison), the seed, new_levels and the likelihood's name. An identical second request
reads the draws back without building or compiling anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlm.errors import MlmError
from mlm.fingerprint import data_fingerprint, digest
from mlm.store import Record
from mlm.version import __version__ as MLM_VERSION

if TYPE_CHECKING:
    import xarray as xr

    from mlm.stages.session import Session

PROB = 0.95  # the interval of the tidy table: q2.5 and q97.5, as brms' Q2.5 and Q97.5
READERS = {".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}
# A column of the new rows named as the prediction itself (the outcome, given in the new
# data) is kept on the draws under this suffix.
GIVEN = "_given"


@dataclass(frozen=True)
class Rows:
    """The rows to predict for: a DataFrame and what to call it in messages."""

    frame: pd.DataFrame
    source: str  # "newdata", or the file it was read from

    @property
    def fingerprint(self) -> str:
        return data_fingerprint(self.frame)


@dataclass(frozen=True)
class Request:
    """What is asked: predictions of `kind`, or (variable set) a comparison of two values."""

    kind: str = "response"  # "response" or "mean" (a comparison is of the mean)
    seed: int | None = None
    new_levels: str = "gaussian"
    observed: str | None = None
    variable: str | None = None
    values: tuple = ()
    by: str | None = None

    @property
    def comparison(self) -> bool:
        return self.variable is not None

    def inputs(self) -> dict:
        """What the cache key hashes of the request itself."""
        if self.comparison:
            asked = {
                "kind": "comparison",
                "variable": self.variable,
                "values": [repr(v) for v in self.values],
                "by": self.by,
            }
        else:
            asked = {"kind": self.kind}
        return {
            **asked,
            "seed": self.seed,
            "new_levels": self.new_levels,
            "observed": self.observed,
        }


@dataclass
class Result:
    """Draws of predictions (chain, draw, row) or of a comparison (chain, draw[, by])."""

    draws: xr.DataArray
    key: str
    path: Path  # the cached draws' file (.mlm/predict/<variant>/<key>/draws.nc)
    cached: bool  # read back from the cache (nothing built, compiled or drawn)
    request: Request = field(default_factory=Request)

    def table(self, prob: float = PROB) -> pd.DataFrame:
        return tidy(self.draws, prob)


# reading the new rows ------------------------------------------------------------------
def rows_of(newdata, what: str = "newdata", root: Path | None = None) -> Rows:
    """The rows to predict for, from a DataFrame or a CSV, TSV or Parquet file's path.

    A relative path is read from the current folder, or from the project's `root` when
    only there (so `mlm -C project predict new.csv` finds project/new.csv)."""
    if isinstance(newdata, Rows):
        return newdata
    if isinstance(newdata, pd.DataFrame):
        if newdata.empty:
            raise MlmError(f"{what} has no rows to predict")
        return Rows(newdata, what)
    if isinstance(newdata, dict):
        return rows_of(pd.DataFrame(newdata), what)
    if not isinstance(newdata, str | Path):
        raise MlmError(
            f"{what} must be a pandas DataFrame or the path of a CSV or Parquet file, "
            f"not {type(newdata).__name__}"
        )
    path = Path(newdata)
    if root is not None and not path.is_absolute() and not path.exists():
        if (Path(root) / path).is_file():
            path = Path(root) / path
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise MlmError(
            f"{path}: cannot tell how to read it from its suffix; give a .csv, .tsv or "
            ".parquet file"
        )
    if not path.is_file():
        raise MlmError(f"{path}: no such file")
    try:
        if reader == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, sep="\t" if reader == "tsv" else ",")
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MlmError(f"{path}: cannot read it as {reader.upper()}: {first}") from None
    if frame.empty:
        raise MlmError(f"{path} has no rows to predict")
    return Rows(frame, str(path))


def conform(rows: Rows, data: pd.DataFrame) -> pd.DataFrame:
    """The new rows with each column shared with the data read as the data's column is.

    A file's numbers are parsed as numbers; a column of labels in the data (text or a
    category) gets the new rows' values as text, so a group written 3 in a CSV matches
    the data's "3". Text where the data have numbers is refused, naming column and row.
    """
    frame = rows.frame.copy()
    for column in frame.columns:
        if column not in data.columns:
            continue
        have, new = data[column], frame[column]
        if pd.api.types.is_bool_dtype(have) or isinstance(have.dtype, pd.CategoricalDtype):
            labels = have.cat.categories if isinstance(have.dtype, pd.CategoricalDtype) else None
            if labels is not None and all(isinstance(v, str) for v in labels):
                frame[column] = new.astype(str).where(new.notna())
            continue
        if pd.api.types.is_numeric_dtype(have):
            if pd.api.types.is_numeric_dtype(new):
                continue
            parsed = pd.to_numeric(new, errors="coerce")
            bad = parsed.isna() & new.notna()
            if bad.any():
                at = int(np.flatnonzero(bad.to_numpy())[0])
                raise MlmError(
                    f"{rows.source}: column {column!r} holds text ({new.iloc[at]!r} in row "
                    f"{at}) where the data have numbers; for a new level of a grouping "
                    "column written in numbers, give a number the data do not have"
                )
            frame[column] = parsed
        elif (
            have.map(lambda v: isinstance(v, str)).all()
            and not new.map(lambda v: isinstance(v, str)).all()
        ):
            frame[column] = new.astype(str).where(new.notna())
    return frame


# the cached draws -----------------------------------------------------------------------
def cached(
    session: Session, variant: str, rows: Rows | None, request: Request, say: bool = True
) -> Result:
    """Predictions (or a comparison) for `rows` (None: the data's rows), from the cache
    when an identical request was made on the same trace, else drawn now and cached."""
    from mlm.predict.core import KINDS, NEW_LEVELS

    if not request.comparison and request.kind not in KINDS:
        raise MlmError(f"kind must be one of {', '.join(KINDS)}, not {request.kind!r}")
    if request.new_levels not in NEW_LEVELS:
        raise MlmError(
            f"new_levels must be one of {', '.join(NEW_LEVELS)}, not {request.new_levels!r}"
        )
    layout = session.layout
    store = layout.store
    if request.seed is None:
        request = replace(request, seed=layout.seed)
    fit = session.fit(variant)
    trace_key = fit.key()
    inputs = {
        "trace": trace_key,
        "rows": rows.fingerprint if rows is not None else "the data",
        **request.inputs(),
        "mlm version": MLM_VERSION,
    }
    key = digest(inputs)
    path = store.paths.prediction_draws(variant, key)
    found = store.load_prediction(variant, key)
    what = "comparison" if request.comparison else f"{request.kind} predictions"
    if found is not None:
        draws, _ = found
        if say:
            session.say("predict", f"{what} read from the cache ({key})", variant)
        return Result(draws, key, path, True, request)

    session.data().run()
    idata = fit.value()  # fits first only when the trace is stale, saying so
    data = session.data().value()
    build = _builder(session, variant)
    if say:
        session.say("predict", f"drawing {what} from trace {trace_key}", variant)
    start = time.perf_counter()
    draws = _draw(build, data, idata, rows, request)
    wall = time.perf_counter() - start
    if store.has_trace(variant, trace_key):
        # Never cache what was drawn from the kept draws of an incomplete fit.
        details = {
            "variant": variant,
            "rows": len(rows.frame) if rows is not None else len(data),
            "source": rows.source if rows is not None else "the data",
            "wall_time_s": round(wall, 3),
        }
        store.save_prediction(variant, Record(key, inputs, details=details), draws)
        if say:
            session.say("predict", f"drew in {wall:.1f} s; cached as {key}", variant)
    return Result(draws, key, path, False, request)


def _builder(session: Session, variant: str) -> Callable:
    """The variant's build(), called as mlm calls it (project root, what it asks for)."""
    slots = session.slots
    filename = session.layout.model_file(variant)
    fn = slots.function("model", filename=filename)
    providers = session.providers("model", variant)

    def build(frame: pd.DataFrame):
        return slots.call("model", fn, {**providers, "data": lambda: frame}, filename)

    return build


def _draw(build, data, idata, rows: Rows | None, request: Request):
    """Draw what `request` asks from the trace, naming the file in messages about it."""
    from mlm.predict.compare import compare
    from mlm.predict.core import predict

    frame = conform(rows, data) if rows is not None else None
    options = {"seed": request.seed, "observed": request.observed}
    options["new_levels"] = request.new_levels
    try:
        if request.comparison:
            return compare(
                build,
                data,
                idata,
                request.variable,
                request.values,
                newdata=frame,
                by=request.by,
                **options,
            )
        draws = predict(build, data, frame, idata, kind=request.kind, **options)
    except MlmError as exc:
        text = str(exc)
        if rows is not None and rows.source != "newdata":
            if text.startswith("newdata "):
                raise MlmError(text.replace("newdata", rows.source)) from exc
            if text.startswith("cannot compare") and "the rows" in text:
                raise MlmError(text.replace("the rows", rows.source, 1)) from exc
        raise
    return with_columns(draws, frame)


def with_columns(draws, frame: pd.DataFrame):
    """The draws with each column of the new rows as a coordinate along `row` (text for
    anything but numbers and booleans, so that the NetCDF file reads anywhere)."""
    coords = {}
    for column in frame.columns:
        name = str(column)
        if name in draws.dims or name in draws.coords:
            continue
        if name == draws.name:
            name += GIVEN
        values = frame[column]
        if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
            values = values.astype(str)
        coords[name] = ("row", values.to_numpy())
    return draws.assign_coords(coords)


# the tidy table ---------------------------------------------------------------------------
def tidy(draws, prob: float = PROB) -> pd.DataFrame:
    """One line per row (or subgroup): the row, the new data's columns, then mean, sd and
    the equal-tailed interval's bounds (q2.5, q97.5 at prob=0.95)."""
    from mlm.predict.summary import summary

    table = summary(draws, prob)
    if "row" in draws.dims:
        extra = {
            name: coord.to_numpy()
            for name, coord in draws.coords.items()
            if coord.dims == ("row",) and name != "row"
        }
        columns = pd.DataFrame(extra, index=table.index)
        table = pd.concat([table[["row"]], columns, table.drop(columns="row")], axis=1)
    elif draws.attrs.get("kind") == "comparison":
        table.insert(
            len(table.columns) - 4,
            "contrast",
            f"{draws.attrs['variable']}: {_values(draws.attrs.get('values', ''))}",
        )
    return table


def _values(values: str) -> str:
    """'0, 1' (as compare() records them) -> '1 - 0'."""
    parts = [p.strip().strip("'\"") for p in values.split(",")]
    return f"{parts[1]} - {parts[0]}" if len(parts) == 2 else values


def write_table(table: pd.DataFrame, path: Path) -> Path:
    """The table as CSV, TSV or Parquet (by the suffix); the draws' NetCDF path beside it."""
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise MlmError(f"{path}: give --out a .csv, .tsv or .parquet file")
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "parquet":
        table.to_parquet(path, index=False)
    else:
        table.to_csv(path, index=False, sep="\t" if kind == "tsv" else ",")
    return path.with_suffix(".nc")


# the Python forms -------------------------------------------------------------------------
def parse_values(spec: str) -> tuple[str, tuple]:
    """'tx=0,1' -> ("tx", ("0", "1")): a predictor and the two values to compare."""
    name, sep, values = spec.partition("=")
    parts = [p.strip() for p in values.split(",")] if sep else []
    if not name.strip() or len(parts) != 2 or not all(parts):
        raise MlmError(
            f"--compare {spec!r}: give a predictor and two of its values, as tx=0,1 or "
            "condition=control,treated"
        )
    return name.strip(), tuple(parts)


def typed_values(values: tuple, column: pd.Series) -> tuple:
    """Two values given as text, read as the column's values are (numbers, labels)."""
    if pd.api.types.is_bool_dtype(column):
        truth = {"true": True, "1": True, "false": False, "0": False}
        return tuple(truth.get(str(v).lower(), v) for v in values)
    if pd.api.types.is_numeric_dtype(column) and not isinstance(column.dtype, pd.CategoricalDtype):
        typed = []
        for v in values:
            if isinstance(v, str):
                try:
                    number = float(v)
                except ValueError:
                    raise MlmError(
                        f"--compare: {column.name!r} holds numbers, and {v!r} is not one"
                    ) from None
                v = int(number) if number.is_integer() and column.dtype.kind in "iu" else number
            typed.append(v)
        return tuple(typed)
    labels = column.cat.categories if isinstance(column.dtype, pd.CategoricalDtype) else column
    if len(labels) and not isinstance(labels[0], str):
        kind = type(labels[0])
        return tuple(kind(v) if isinstance(v, str) else v for v in values)
    return tuple(values)


def comparison_request(session: Session, variable: str, values, rows: Rows | None, by, **options):
    """The Request of a comparison, its two values read as the column's values are."""
    frame = rows.frame if rows is not None else session.data().value()
    if variable not in frame.columns:
        where = rows.source if rows is not None else "the data"
        raise MlmError(
            f"cannot compare: {where} has no column {variable!r}; it has "
            f"{', '.join(map(str, frame.columns))}"
        )
    column = frame[variable]
    if len(values) != 2:
        raise MlmError(f"values must be two values of {variable} to compare, not {values!r}")
    return Request(variable=variable, values=typed_values(tuple(values), column), by=by, **options)


def figure_predict(session: Session, variant: str) -> Callable:
    """The `predict` a figure asks for: Project.predict for the figure's variant.

    predict(newdata, kind="response", seed=None, new_levels="gaussian", observed=None)
    returns draws (chain, draw, row); predict.compare(variable, values, newdata=None,
    by=None, ...) the draws of a comparison. Both read the prediction cache.
    """

    def predict(
        newdata,
        kind: str = "response",
        *,
        seed: int | None = None,
        new_levels: str = "gaussian",
        observed: str | None = None,
    ):
        request = Request(kind=kind, seed=seed, new_levels=new_levels, observed=observed)
        return cached(session, variant, rows_of(newdata), request, say=False).draws

    def compare(
        variable: str,
        values=(0, 1),
        newdata=None,
        by: str | None = None,
        *,
        seed: int | None = None,
        new_levels: str = "gaussian",
        observed: str | None = None,
    ):
        rows = rows_of(newdata) if newdata is not None else None
        request = comparison_request(
            session, variable, values, rows, by, seed=seed, new_levels=new_levels, observed=observed
        )
        return cached(session, variant, rows, request, say=False).draws

    predict.compare = compare
    return predict
