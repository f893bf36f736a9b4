"""Fit: sample(model, project) returns the trace (an xarray DataTree).

mlm caches what this returns and calls it again only when model.py, fit.py, the data or
the seed in mlm.toml change. Everything about sampling is here, in plain sight.
"""

import pymc as pm


def sample(model, project):
    """Posterior draws, pointwise log-likelihood (for LOO) and posterior predictive draws."""
    with model:
        # nutpie's low-rank mass matrix learns the correlations a diagonal one misses (an
        # intercept against its group effects); drop nuts_sampler_kwargs for the diagonal.
        # target_accept=0.95 takes smaller steps where group SDs near 0 curve the posterior,
        # as rstanarm's default for multilevel models (adapt_delta = 0.95) does. 2,000 draws
        # per chain: the SD of a varying slope on few rows per level can mix at 0.1 effective
        # draws per draw, and mlm check asks for 400.
        idata = pm.sample(
            draws=2000,
            tune=1000,
            chains=4,
            target_accept=0.95,
            random_seed=project.seed,
            nuts_sampler_kwargs={"adaptation": "low_rank"},
        )
        pm.compute_log_likelihood(idata)
        pm.sample_posterior_predictive(idata, extend_inferencedata=True, random_seed=project.seed)
    return idata
