"""Compiled models that outlive the process: nutpie's numba callbacks cached on disk.

nutpie samples a PyMC model through two C callbacks that it compiles with numba: the log
density with its gradient, and the expansion of a draw into every variable of the trace.
PyTensor already keeps its own numba functions in an on-disk cache, but nutpie builds its
callbacks as closures named by random keys, which numba cannot cache, so every process
compiles them again: about 5 s for the example model, which samples in under 1 s.

While `persistent()` is active, nutpie's numba compilation goes through `compile_numba`
below. It builds the same two callbacks from module-level source with deterministic
names, and files them in PyTensor's numba cache under a key made of PyTensor's own keys
for the two functions (which cover the model graph and every constant in it), the layout
of the shared data, and the versions of everything that generates code. Data that the
model holds in pm.Data reaches the callbacks at run time through nutpie's user-data
pointers, so a change of that data alone reuses the compiled callbacks; a change of a
constant (say, observed values passed as a plain array) is a new key and a new compile.

Anything this module cannot handle (a model PyTensor does not cache, a nutpie whose
internals differ) falls back to nutpie's own compilation: never a wrong model, at worst
the old speed. Turn it off with `compile_cache = false` under [fit] in mlm.toml.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass

log = logging.getLogger(__name__)

# Callbacks with nutpie's C signatures and return codes (0 ok, 3 non-finite gradient,
# 4 non-finite log density, 1 or -2 an error, -1 a size mismatch). `extract` is nutpie's
# function that calls PyTensor's compiled function with the shared data found through
# the user-data pointer. N_DIM and N_EXPANDED are compile-time constants.
LOGP_SOURCE = """
def mlm_logp(dim, x_, out_, logp_, user_data_):
    if dim != N_DIM:
        return -1
    try:
        x = numba.carray(x_, (N_DIM,))
        out = numba.carray(out_, (N_DIM,))
        logp = numba.carray(logp_, ())
        value, grad = extract(x, user_data_)
        logp[()] = value
        out[...] = grad
        if not np.all(np.isfinite(out)):
            return 3
        if not np.isfinite(value):
            return 4
    except Exception:
        return 1
    return 0
"""

EXPAND_SOURCE = """
def mlm_expand(dim, expanded, x_, out_, user_data_):
    if dim != N_DIM or expanded != N_EXPANDED:
        return -1
    try:
        x = numba.carray(x_, (N_DIM,))
        out = numba.carray(out_, (N_EXPANDED,))
        (values,) = extract(x, user_data_)
        out[...] = values
    except Exception:
        return -2
    return 0
"""

# Bumped whenever the callbacks or the key change, so no older entry is ever loaded.
FORMAT = 2


@dataclass
class Counts:
    """What the compilations in one `persistent()` block did."""

    loaded: int = 0  # models whose callbacks came from the disk cache
    compiled: int = 0  # models compiled (and stored when the cache could take them)
    fallback: int = 0  # models compiled by nutpie itself


_lock = threading.Lock()
_active: list[Counts] = []
_original = None


@contextlib.contextmanager
def persistent(enabled: bool = True) -> Iterator[Counts]:
    """While active, nutpie (also through pm.sample) reuses compiled models across processes."""
    counts = Counts()
    if not enabled:
        yield counts
        return
    global _original
    try:
        from nutpie import compile_pymc
    except ImportError:  # no nutpie: pm.sample uses another sampler, nothing to cache
        yield counts
        return
    with _lock:
        if not _active:
            _original = compile_pymc._compile_pymc_model_numba
            compile_pymc._compile_pymc_model_numba = compile_numba
        _active.append(counts)
    try:
        yield counts
    finally:
        with _lock:
            _active.remove(counts)
            if not _active:
                compile_pymc._compile_pymc_model_numba = _original


def _count(field: str) -> None:
    for counts in _active:
        setattr(counts, field, getattr(counts, field) + 1)


def compile_numba(model, pymc_initial_point_fn, var_names=None, **kwargs):
    """nutpie's numba compilation of `model`, with its callbacks kept in PyTensor's cache.

    Same arguments and result as nutpie.compile_pymc._compile_pymc_model_numba.
    """
    from nutpie import compile_pymc

    # nutpie's own first step: a model that does not compile fails here just as it would there.
    functions = compile_pymc._make_functions(
        model,
        mode="NUMBA",
        compute_grad=True,
        join_expanded=True,
        pymc_initial_point_fn=pymc_initial_point_fn,
        var_names=var_names,
    )
    try:
        compiled, loaded = _assemble(model, functions, kwargs)
    except Exception as exc:  # nutpie's internals moved: its own path still works
        log.debug("compiled-model cache unavailable (%s); nutpie compiles", exc)
        _count("fallback")
        return _original(model, pymc_initial_point_fn, var_names=var_names, **kwargs)
    _count("loaded" if loaded else "compiled")
    return compiled


def _assemble(model, functions, cfunc_options: dict):
    import numba
    import numpy as np
    import nutpie
    import pytensor
    from nutpie import compile_pymc
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    n_dim, n_expanded, logp_fn, expand_fn, initial_point, shape_info, renamed = functions
    # Shared variables (pm.Data, mutable dims) in order of first use, with stable names.
    shared_keys: dict = {}
    shared_data: dict[str, np.ndarray] = {}
    for variable in [*logp_fn.get_shared(), *expand_fn.get_shared()]:
        if variable in shared_keys:
            continue
        key = f"shared{len(shared_keys)}"
        shared_keys[variable] = key
        value = np.array(variable.get_value(), order="C", copy=True)
        value.flags.writeable = False
        shared_data[key] = value
    user_data = compile_pymc.make_user_data(shared_keys, shared_data)
    # nutpie's extraction function starts from a tuple of the arrays it is given, before
    # it swaps in the ones the user-data pointer holds at run time. numba freezes such
    # arrays into the compiled code, and one over 1 MB (131,072 float64 rows) becomes a
    # pointer that numba refuses to cache: a large model was compiled in every process.
    # Stand-ins of the same dtype and rank, one element each, make the code the same
    # whatever the data, and cacheable at any size.
    stand_ins = {
        key: np.zeros((1,) * value.ndim, dtype=value.dtype) for key, value in shared_data.items()
    }
    layout = [(key, value.dtype.str, value.ndim) for key, value in shared_data.items()]
    versions = (numba.__version__, nutpie.__version__, pytensor.__version__, np.__version__)
    types = numba.types
    signatures = {
        "mlm_logp": types.int64(
            types.uint64,
            types.CPointer(types.double),
            types.CPointer(types.double),
            types.CPointer(types.double),
            types.voidptr,
        ),
        "mlm_expand": types.int64(
            types.uint64,
            types.uint64,
            types.CPointer(types.double),
            types.CPointer(types.double),
            types.voidptr,
        ),
    }

    def callback(source: str, name: str, function, n_out: int):
        inner = function.vm.jit_fn
        uses = [shared_keys[v] for v in function.get_shared()]
        extract = compile_pymc.make_extraction_fn(inner, stand_ins, uses, user_data.dtype)
        namespace = {
            "__name__": __name__,
            "numba": numba,
            "np": np,
            "extract": extract,
            "N_DIM": n_dim,
            "N_EXPANDED": n_out,
        }
        exec(compile(source, "<mlm-compiled>", "exec"), namespace)
        python = namespace[name]
        pytensor_key = CACHED_SRC_FUNCTIONS.get(inner.py_func)
        if pytensor_key is not None:  # PyTensor could key this graph: so can we
            parts = (FORMAT, source, pytensor_key, n_dim, n_out, layout, uses, versions)
            parts += (sorted(cfunc_options.items()),)
            digest = hashlib.sha256(repr(parts).encode()).hexdigest()
            CACHED_SRC_FUNCTIONS[python] = f"mlm{digest}"
        cached = pytensor_key is not None and pytensor.config.numba__cache
        return numba.cfunc(signatures[name], cache=cached, **cfunc_options)(python)

    logp = callback(LOGP_SOURCE, "mlm_logp", logp_fn, 0)
    expand = callback(EXPAND_SOURCE, "mlm_expand", expand_fn, n_expanded)
    dims, coords = compile_pymc._prepare_dims_and_coords(model, shape_info, renamed)
    compiled = compile_pymc.CompiledPyMCModel(
        _n_dim=n_dim,
        dims=dims,
        _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=logp,
        compiled_expand_func=expand,
        initial_point_func=initial_point,
        shared_data=shared_data,
        shared_var_keys=shared_keys,
        user_data=user_data,
        n_expanded=n_expanded,
        shape_info=shape_info,
        logp_func=logp_fn,
        expand_func=expand_fn,
        reparameterized_names=renamed,
    )
    return compiled, logp.cache_hits > 0 and expand.cache_hits > 0
