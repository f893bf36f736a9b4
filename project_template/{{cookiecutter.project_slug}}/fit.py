"""Fit: sample(model, project) returns the trace (an xarray DataTree).

mlm caches what this returns and calls it again only when model.py, fit.py, the data or
the seed in mlm.toml change. Everything about sampling is here, in plain sight.
"""

import pymc as pm


def sample(model, project):
    """Posterior draws (again with smaller steps if any diverged), and posterior predictive
    draws for 100 of them."""
    with model:
        idata = draw(model, project, target_accept=0.95)
        # A divergent transition is a step too long for the posterior's curvature where it
        # was taken: the draws near it may be biased, and mlm check fails the fit. A few
        # are cured by smaller steps, as mlm check would advise, so then the fit is sampled
        # once more, at target_accept=0.99, and only that second try is kept. On mlm's
        # validation corpus this removed them; sampling at 0.99 took 1 to 2.3 times as long
        # as at 0.95 (docs/validation.md, "Divergences: sampled again"). If some remain, mlm
        # check says where they sit and what else to change.
        divergent = int(idata["sample_stats"]["diverging"].sum())
        if divergent:
            print(
                f"fit.py: {divergent} divergent transitions at target_accept=0.95; "
                "sampling again at 0.99"
            )
            idata = draw(model, project, target_accept=0.99)
        # Posterior predictive draws for 100 of the 8,000 posterior draws (every 80th draw of
        # each chain): plenty for predictive checks, and each is one value per row, so all
        # 8,000 would be 64 GB at a million rows. Draw them for every posterior draw (or
        # a finer thinning) if you need more. The whole trace is thinned, not only the
        # posterior, so that PyMC sees the data it was fitted on (constant_data) unchanged.
        thinned = idata.isel(draw=slice(None, None, 80), missing_dims="ignore")
        predictive = pm.sample_posterior_predictive(thinned, random_seed=project.seed)
        idata["posterior_predictive"] = predictive["posterior_predictive"]
        # No pointwise log-likelihood is stored (draws x rows again): `mlm run compare`
        # computes PSIS-LOO from the model a chunk of rows at a time. To keep it in the
        # trace instead, add pm.compute_log_likelihood(idata) here; compare then uses it.
    return idata


def draw(model, project, target_accept):
    """4 chains of 2,000 posterior draws from nutpie (PyMC's sampler when it is installed)."""
    # nutpie's low-rank mass matrix learns the correlations a diagonal one misses (an
    # intercept against its group effects, crossed effects), but adapting it costs more
    # with every parameter: on mlm's measurements it sampled a model of 104 free
    # parameters in 0.7 s, of 134 in 13 s, of 1,004 in 126 s (the diagonal: 0.2-1.8 s,
    # as many effective draws). So low rank for up to 150 free parameters, the diagonal
    # above (docs/validation.md, "The mass matrix"); set adaptation yourself to choose.
    free = sum(value.size for value in model.initial_point().values())
    adaptation = "low_rank" if free <= 150 else "diag"
    # target_accept=0.95 (sample's first try) takes smaller steps where group SDs near 0
    # curve the posterior, as rstanarm's default for multilevel models (adapt_delta =
    # 0.95) does. 2,000 draws per chain: the SD of a varying slope on few rows per level
    # can mix at 0.1 effective draws per draw, and mlm check asks for 400.
    return pm.sample(
        draws=2000,
        tune=1000,
        chains=4,
        target_accept=target_accept,
        random_seed=project.seed,
        nuts={"adaptation": adaptation},
        model=model,
    )
