"""One sampler on the example's data, in its own process: ESS per second, or the
distance to the limit.

    python sampler_run.py SAMPLER ess|limit OUT.json [--quick]

SAMPLER: nutpie (the example's default fit, as `mlm run fit` runs it: through mlm's
compiled-model cache), nutpie_uncached (the same without that cache: nutpie compiles its
callbacks in every process), pymc (PyMC's own NUTS), numpyro, design_matrix (the seed's
original form: design matrix Z, centered effects, nutpie through mlm's cache), bambi (the
same formula, bambi's default sampler).

ess: the example's settings (4 chains, 1000 tune, 2000 draws); wall time from before the
model is built to the end of sampling (compilation included; imports not), min bulk ESS
over b0, b1, sigma_u, sigma_e and u.

limit: one chain on one core, warm-up kept; sampling time / (gradient evaluations x the
time of one logp+gradient evaluation of the same compiled backend).
"""

import importlib.util
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "example_project"
sys.path.insert(0, str(EXAMPLE))
SEED = 2011
COMMON = ["b0", "b1", "sigma_u", "sigma_e", "u"]


def _module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _data():
    return _module(EXAMPLE / "data.py", "trial_data").load()


def build(name: str, data):
    if name == "design_matrix":
        return _module(EXAMPLE / "reference" / "design_matrix.py", "design_matrix").build(data)
    return _module(EXAMPLE / "model.py", "trial_model").build(data)


def bambi_model(data):
    import bambi as bmb

    frame = data.assign(
        treated=(data["condition"] == "treated").astype(int), group=data["group"].astype(str)
    )
    formula = bmb.Formula("y ~ treated + (0 + treated | group)", "sigma ~ condition")
    return bmb.Model(formula, frame)


def min_ess(idata, names) -> tuple[float, str]:
    import arviz as az

    post = idata["posterior"].to_dataset()
    ess = az.ess(post[[n for n in names if n in post]], method="bulk")
    worst = {n: float(np.min(ess[n].values)) for n in ess.data_vars}
    name = min(worst, key=worst.get)
    return worst[name], name


def run_ess(name: str, draws: int, tune: int, chains: int) -> dict:
    import pymc as pm

    # Imports are not part of the timed fit: the sampler's library is imported first
    # (pm.sample would import nutpie or numpyro lazily, bambi_model imports bambi).
    library = {"bambi": "bambi", "numpyro": "numpyro", "pymc": None}.get(name, "nutpie")
    if library:
        importlib.import_module(library)
    data = _data()
    start = time.perf_counter()
    if name == "bambi":
        model = bambi_model(data)
        idata = model.fit(
            draws=draws, tune=tune, chains=chains, random_seed=SEED, progressbar=False
        )
        wall = time.perf_counter() - start
        post = idata["posterior"]
        rename = {
            "Intercept": "b0",
            "treated": "b1",
            "0 + treated|group_sigma": "sigma_u",
            "treated|group_sigma": "sigma_u",
            "0 + treated|group": "u",
            "treated|group": "u",
        }
        names = [rename.get(v, v) for v in post.data_vars]
        idata["posterior"] = post.to_dataset().rename(
            {k: v for k, v in rename.items() if k in post.data_vars}
        )
        names = [n for n in COMMON if n in names] + ["sigma_Intercept", "sigma_condition"]
        ess, worst = min_ess(idata, names)
        return {
            "wall_s": wall,
            "min_ess_bulk": ess,
            "worst": worst,
            "sampling_time_s": post.attrs.get("sampling_time"),
            "sampler": "bambi default (PyMC NUTS via pm.sample)",
        }
    from mlm import compiled

    model = build(name, data)
    sampler = {"pymc": "pymc", "numpyro": "numpyro"}.get(name, "nutpie")
    with model, compiled.persistent(name in ("nutpie", "design_matrix")) as counts:
        idata = pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=SEED,
            nuts_sampler=sampler,
            progressbar=False,
        )
    wall = time.perf_counter() - start
    sampler += " (compiled model reused)" if counts.loaded else ""
    ess, worst = min_ess(idata, COMMON)
    return {
        "wall_s": wall,
        "min_ess_bulk": ess,
        "worst": worst,
        "sampling_time_s": idata["posterior"].attrs.get("sampling_time"),
        "sampler": sampler,
    }


def eval_time(fn, x, seconds: float = 1.0) -> float:
    """Median time of one call of fn(x), over batches filling about `seconds`."""
    fn(x)
    n, batches = 1, []
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn(x)
        if time.perf_counter() - start > 0.05:
            break
        n *= 4
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop or len(batches) < 5:
        start = time.perf_counter()
        for _ in range(n):
            fn(x)
        batches.append((time.perf_counter() - start) / n)
    return float(np.median(batches))


def logp_dlogp(name: str, model):
    """The logp+gradient function the sampler evaluates, and a point to evaluate it at."""
    from pymc.blocking import DictToArrayBijection

    point = model.initial_point()
    x = DictToArrayBijection.map({v.name: point[v.name] for v in model.value_vars}).data
    if name == "numpyro":
        import jax
        from pymc.sampling.jax import get_jaxified_logp

        logp = get_jaxified_logp(model)
        shapes = [point[v.name].shape for v in model.value_vars]
        sizes = [int(np.prod(s)) for s in shapes]

        def joined(flat):
            parts, i = [], 0
            for shape, size in zip(shapes, sizes, strict=True):
                parts.append(flat[i : i + size].reshape(shape))
                i += size
            return logp(parts)

        f = jax.jit(jax.value_and_grad(joined))
        return lambda q: jax.block_until_ready(f(q)), x
    mode = "NUMBA" if name in ("nutpie", "design_matrix") else None
    fn = model.logp_dlogp_function(ravel_inputs=True, mode=mode)
    fn.set_extra_values({})
    if mode == "NUMBA":
        # nutpie calls the compiled numba function directly, without PyTensor's Python layer.
        jit, function = fn._pytensor_function.vm.jit_fn, fn._pytensor_function
        shared = [v.get_value() for v in function.get_shared()]
        return lambda q: jit(q, *shared), x
    return fn._pytensor_function, x


def run_limit(name: str, draws: int, tune: int) -> dict:
    import pymc as pm

    model = build(name, _data())
    sampler = {"pymc": "pymc", "numpyro": "numpyro"}.get(name, "nutpie")
    with model:
        start = time.perf_counter()
        idata = pm.sample(
            draws=draws,
            tune=tune,
            chains=1,
            cores=1,
            random_seed=SEED,
            nuts_sampler=sampler,
            progressbar=False,
            discard_tuned_samples=False,
            compute_convergence_checks=False,
        )
        call = time.perf_counter() - start
    sampling = idata["posterior"].attrs.get("sampling_time") or call
    steps = 0
    for group in ("sample_stats", "warmup_sample_stats"):
        if group in idata.children:
            stats = idata[group]
            field = "n_steps" if "n_steps" in stats else "tree_size"
            steps += int(np.asarray(stats[field]).sum())
    fn, x = logp_dlogp(name, model)
    t_eval = eval_time(fn, x)
    return {
        "sampling_s": sampling,
        "pm_sample_s": call,
        "gradient_evals": steps,
        "eval_us": t_eval * 1e6,
        "ratio": sampling / (steps * t_eval),
        "sampler": sampler,
    }


def main() -> None:
    name, mode, out = sys.argv[1], sys.argv[2], sys.argv[3]
    quick = "--quick" in sys.argv
    if mode == "ess":
        result = run_ess(name, draws=1000 if quick else 2000, tune=1000, chains=4)
    else:
        result = run_limit(name, draws=1000, tune=1000)
    Path(out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
