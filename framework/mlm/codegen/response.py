"""The outcome: its array in build() (a two-level text response coded 0/1, as glmer reads
a two-level factor), the trials of a binomial, and the likelihood line of each family."""

from __future__ import annotations

from mlm.codegen.body import BuildBody, _renamed, comment

LINKS = {
    "gaussian": "identity",
    "student_t": "identity",
    "bernoulli": "logit",
    "binomial": "logit",
    "poisson": "log",
    "negbinomial": "log",
    "gamma": "log",
    "lognormal": "identity",  # on log(y): mu is the mean of log(y)
    "beta": "logit",
    "zero_inflated_poisson": "log",
    "zero_inflated_negbinomial": "log",
}
LIKELIHOODS = {
    "gaussian": 'pm.Normal("{y}", mu=mu, sigma={sigma}',
    "student_t": 'pm.StudentT("{y}", nu=nu, mu=mu, sigma={sigma}',
    "bernoulli": 'pm.Bernoulli("{y}", logit_p=eta',
    "binomial": 'pm.Binomial("{y}", n=trials_, logit_p=eta',
    "poisson": 'pm.Poisson("{y}", mu=pm.math.exp(eta)',
    "negbinomial": 'pm.NegativeBinomial("{y}", mu=pm.math.exp(eta), alpha=theta',
    # Mean exp(eta): alpha / beta = shape / (shape / mean).
    "gamma": 'pm.Gamma("{y}", alpha=shape, beta=shape / pm.math.exp(eta)',
    "lognormal": 'pm.LogNormal("{y}", mu=mu, sigma={sigma}',
    "beta": 'pm.Beta("{y}", mu=pm.math.invlogit(eta), nu=phi',
    # PyMC's psi is the probability of the count part: 1 - zi.
    "zero_inflated_poisson": 'pm.ZeroInflatedPoisson("{y}", psi=1 - zi, mu=pm.math.exp(eta)',
    "zero_inflated_negbinomial": (
        'pm.ZeroInflatedNegativeBinomial("{y}", psi=1 - zi, mu=pm.math.exp(eta), alpha=theta'
    ),
}
# The outcome's range for the positive and proportion families, as build() checks it.
RANGES = {
    "gamma": ("y > 0", "> 0"),
    "lognormal": ("y > 0", "> 0"),
    "beta": ("(y > 0) & (y < 1)", "strictly between 0 and 1"),
}


def outcome(body: BuildBody) -> None:
    """Write the outcome's array `y` (and a binomial's `trials`) into build()'s prep."""
    spec, columns = body.spec, body.columns
    column = spec.response
    if columns.outcome is None:
        body.prep.append(f'y = data["{column}"].to_numpy(dtype=float)')
    else:
        failure, success = columns.outcome
        body.prep += [
            *comment(
                f"{column} is 1 for {success!r} (success) and 0 for {failure!r}, as glmer reads "
                "a two-level factor: its first level (in sorted order) is failure. Change "
                "the success level here."
            ),
            f"success, failure = {success!r}, {failure!r}",
            f'y = (data["{column}"] == success).to_numpy(dtype=float)',
            f'if not data["{column}"].isin([success, failure]).all():',
            f'    rows = data.index[~data["{column}"].isin([success, failure])].tolist()',
            f"    raise ValueError(f\"column '{column}' is neither {{success!r}} nor "
            f'{{failure!r}} at rows {{rows}}")',
        ]
    if spec.family in RANGES:
        inside, said = RANGES[spec.family]
        body.prep += [
            *comment(
                f"The {spec.family} likelihood is 0 elsewhere: name the rows rather than fail "
                "to start sampling."
            ),
            f"if not ({inside}).all():",
            f"    rows = data.index[~({inside})].tolist()",
            "    raise ValueError(",
            f"        f\"column '{column}' must be {said} for family {spec.family}; \"",
            '        f"it is not at rows {rows}"',
            "    )",
        ]
    if spec.family == "binomial" and spec.trials is not None:
        trials = spec.trials
        if not trials.columns:
            code = f"np.full(len(data), {trials.expression})"
        else:
            names = {c: f'data["{c}"].to_numpy(dtype=int)' for c in trials.columns}
            code = _renamed(trials.expression, names)
        body.prep += [
            f"# The number of trials of each row ({trials.label}): y of them are successes.",
            f"trials = {code}",
        ]
        body.data_lines.append('trials_ = pm.Data("trials", trials, dims="obs")')


def describe(body: BuildBody) -> str:
    """The family, its link and its outcome, as model.py's docstring says them."""
    spec, columns = body.spec, body.columns
    link = LINKS[spec.family]
    text = f"family {spec.family}" + ("" if link == "identity" else f" with a {link} link")
    if columns.outcome is not None:
        failure, success = columns.outcome
        text += (
            f"; the outcome is 1 when {spec.response} is {success!r} (success) and 0 when it "
            f"is {failure!r}, as glmer reads a two-level factor (change it in build())"
        )
    if spec.family == "binomial" and spec.trials is not None:
        text += f"; {spec.response} successes out of {spec.trials.label} trials"
    text += FAMILY_NOTES.get(spec.family, "").format(y=spec.response)
    return text + "."


# What each family's own parameters are, in lme4's, brms's and Stata's terms.
FAMILY_NOTES = {
    "negbinomial": (
        "; theta is the negative binomial's shape, lme4's theta (glmer.nb; "
        "Stata's menbreg reports alpha = 1 / theta)"
    ),
    "gamma": (
        "; the mean is exp(eta) and shape the gamma's shape (variance mean^2 / shape), "
        'brms\'s shape in Gamma(link = "log"); glmer(family = Gamma(link = "log")) '
        "reports the dispersion sigma^2 = 1 / shape; Stata: meglm, family(gamma) link(log)"
    ),
    "lognormal": (
        "; log({y}) is normal with mean mu and SD sigma, brms's lognormal(): the same "
        "coefficients as lmer(log({y}) ~ ...), exp(mu) being the median of {y}"
    ),
    "beta": (
        "; the mean is invlogit(eta) and phi the beta's precision (variance "
        "mean (1 - mean) / (1 + phi)), brms's phi in Beta() and glmmTMB's dispersion in "
        "beta_family()"
    ),
    "zero_inflated_poisson": (
        "; zi is the probability of a structural zero, brms's zi in zero_inflated_poisson() "
        "(glmmTMB's ziformula = ~1 estimates its logit); the counts that are not structural "
        "zeros are Poisson with mean exp(eta)"
    ),
    "zero_inflated_negbinomial": (
        "; zi is the probability of a structural zero, brms's zi in "
        "zero_inflated_negbinomial() (glmmTMB's ziformula = ~1 estimates its logit); the "
        "other counts are negative binomial with mean exp(eta) and shape theta (lme4's "
        "theta, glmmTMB's nbinom2 dispersion)"
    ),
}
