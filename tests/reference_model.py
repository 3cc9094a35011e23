"""An independent NumPy simulation of a scenario, for tests: the model as the README states it,
written from the scenario's YAML keys without any of the engine's code (no parser, plan, kernel,
generator or special function of targetsim), vectorised over paths with NumPy's own generator.

It returns each target's attainment probability, the joint one and the effective sample size, so
that tests can check the engine against it within Monte Carlo error. Comparisons are exact (no
tie margin): the scenarios it is used on have continuous laws at their thresholds, or integer
values against thresholds that are not whole numbers.

Supported: lognormal, ar1_growth, logit_share, logistic, buildout, count (poisson, negative_binomial; its mean
a number or ``{mean, sd}``: each path's own mean drawn from the gamma law with that mean and s.d.), scheduled
(each year's due units, planned plus carried, delivered Binomial(due, delivery), the rest carried
Binomial(rest, carry_over); either probability a number or ``{mean, sd}``: each path's own drawn from
the Beta law with that mean and s.d.), ratio and sum; estimated volatilities (``volatility: {estimate, df}``: each
path's σ = estimate·sqrt(df/χ²_df), whose factor also scales its parameter's deviation); correlations among shocked indicators; normal,
Student-t and two-piece shocks; jumps; observations (normal shocks); every target kind and comparator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

SHOCKED = ("lognormal", "ar1_growth", "logit_share", "logistic", "buildout")


@dataclass
class ReferenceResult:
    probability: dict[str, float]
    joint: float
    effective_sample_size: float


def _growth(value) -> tuple[float, float]:
    if isinstance(value, dict):
        return float(value["mean"]), float(value.get("sd", 0.0))
    return float(value), 0.0


def _count_mean(additions: dict, rng: np.random.Generator, n: int):
    """A count's mean additions: the number, or (``{mean, sd}`` with sd > 0) each path's own, drawn from
    Gamma(shape (mean/sd)², scale sd²/mean)."""
    m, sd = _growth(additions["mean"])
    if sd > 0:
        return rng.gamma((m / sd) ** 2, sd * sd / m, n)
    return m


def _chance(spec, rng: np.random.Generator, n: int):
    """A scheduled count's probability: the number, or (``{mean, sd}`` with sd > 0) each path's own, drawn
    from Beta(m·κ, (1 − m)·κ), κ = m(1 − m)/sd² − 1 (NumPy's beta sampler)."""
    if not isinstance(spec, dict):
        return float(spec)
    m, sd = float(spec["mean"]), float(spec.get("sd", 0.0))
    if sd > 0:
        kappa = m * (1 - m) / sd**2 - 1
        return rng.beta(m * kappa, (1 - m) * kappa, n)
    return m


def _volatility(process: dict) -> tuple[float, float]:
    """``(volatility, df)``: a known volatility (df 0) or an estimate with its degrees of freedom."""
    value = (process.get("organic") or process)["volatility"]
    if isinstance(value, dict):
        return float(value["estimate"]), float(value["df"])
    return float(value), 0.0


def _two_piece(z: np.ndarray, skew: float) -> np.ndarray:
    """Standardised two-piece normal (mode 0, left scale 1 − skew, right 1 + skew) by inversion
    of its CDF at Φ(z): F(x) = 2 s1/(s1+s2) Φ(x/s1) below 0, s1/(s1+s2) + 2 s2/(s1+s2) (Φ(x/s2) − ½) above."""
    s1, s2 = 1.0 - skew, 1.0 + skew
    u = stats.norm.cdf(z)
    w = s1 / (s1 + s2)
    left = s1 * stats.norm.ppf(np.minimum(u, w) * (s1 + s2) / (2 * s1))
    right = s2 * stats.norm.ppf(0.5 + (np.maximum(u, w) - w) * (s1 + s2) / (2 * s2))
    x = np.where(u < w, left, right)
    mean = math.sqrt(2 / math.pi) * (s2 - s1)
    second_moment = s1 * s1 - s1 * s2 + s2 * s2
    return (x - mean) / math.sqrt(second_moment - mean * mean)


def _hidden_level(process: dict, x: float) -> float:
    """An observed value on the scale its shocks move: a logit, or ln X."""
    if process["kind"] == "logit_share":
        return math.log(x / (1 - x))
    if process["kind"] == "logistic":
        return math.log(x / (float(process["ceiling"]) - x))
    return math.log(x)


def _compare(x: np.ndarray, comparator: str, threshold: float, low: float, high: float) -> np.ndarray:
    if comparator == ">=":
        return x >= threshold
    if comparator == ">":
        return x > threshold
    if comparator == "<=":
        return x <= threshold
    if comparator == "<":
        return x < threshold
    if comparator == "~>=":  # about, or more: from the lower edge of the '~' band up
        return x >= low
    return (x >= low) & (x <= high)


def simulate_values(data: dict, paths: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``(values, log_w)``: every indicator's values ``(year after the base year, path)`` and each
    path's log-likelihood of the observations (0 without observations)."""
    rng = np.random.default_rng(seed)
    base, horizon = int(data["base_year"]), int(data["horizon"])
    steps = horizon - base
    inds: dict = data["indicators"]
    names = list(inds)
    kind = {k: v["process"]["kind"] for k, v in inds.items()}
    shocked = [k for k in names if kind[k] in SHOCKED]
    pos = {k: j for j, k in enumerate(shocked)}
    corr = np.eye(len(shocked))
    for a, b, rho in data.get("correlations") or []:
        corr[pos[a], pos[b]] = corr[pos[b], pos[a]] = rho
    shocks = data.get("shocks") or {"distribution": "normal"}
    observations = {k: {int(y): float(v) for y, v in years.items()} for k, years in
                    (data.get("observations") or {}).items()}
    n = paths

    # per-path parameters, volatilities and projects
    mu, drift, state, vol, vol_factor = {}, {}, {}, {}, {}
    projects, count_mean, chance = {}, {}, {}
    for k in names:
        proc = inds[k]["process"]
        if kind[k] == "count":
            count_mean[k] = _count_mean(proc["additions"], rng, n)
        if kind[k] == "scheduled":
            chance[k] = (_chance(proc["delivery"], rng, n), _chance(proc.get("carry_over") or 0.0, rng, n))
        if kind[k] in SHOCKED:
            spec = {"lognormal": proc.get("growth"), "ar1_growth": proc.get("long_run_growth"),
                    "buildout": (proc.get("organic") or {}).get("growth")}.get(kind[k], proc.get("drift"))
            m, sd = _growth(spec)
            deviation = sd * rng.standard_normal(n) if sd > 0 else np.zeros(n)
            estimate, df = _volatility(proc)
            if df > 0:  # σ² | data ~ scaled inverse-χ²; the parameter's deviation scales with σ
                vol_factor[k] = np.sqrt(df / rng.chisquare(df, n))
                vol[k], deviation = estimate * vol_factor[k], deviation * vol_factor[k]
            else:
                vol[k] = estimate
            if kind[k] in ("logit_share", "logistic"):
                drift[k] = m + deviation
            elif df > 0:  # a fall of 100 % or more (the heavy tail of an estimated volatility) leaves nothing
                mu[k] = np.log(np.maximum(1.0 + m + deviation, 1e-300))
            else:
                mu[k] = np.log1p(m + deviation) if sd > 0 else np.full(n, math.log1p(m))
        if kind[k] == "buildout":
            done = []
            for p in proc.get("projects") or []:
                first, last = int(p["earliest"]) - base, int(p.get("latest", p["earliest"])) - base
                completed = rng.random(n) < float(p["probability"])
                year = rng.integers(first, last + 1, size=n)
                done.append((float(p["size"]), np.where(completed, year, 10**9)))
            projects[k] = done

    value = {k: np.empty((steps + 1, n)) for k in names}
    for k in names:
        if kind[k] in ("ratio", "sum"):
            continue
        start = _start(inds[k], rng, n)  # each path's (the same on every path when known)
        value[k][0] = start
        if kind[k] == "logit_share":
            state[k] = np.log(start / (1 - start))
        elif kind[k] == "logistic":  # the logit of the share of the ceiling
            state[k] = np.log(start / (float(inds[k]["process"]["ceiling"]) - start))
        elif kind[k] in ("lognormal", "ar1_growth", "buildout"):
            state[k] = np.log(start)
    growth_prev = {k: np.full(n, math.log1p(float(inds[k]["process"]["initial_growth"])))
                   for k in names if kind[k] == "ar1_growth"}
    log_w = np.zeros(n)
    factor = np.linalg.cholesky(corr) if shocked else np.zeros((0, 0))
    carried = {k: np.zeros(n, dtype=np.int64) for k in names if kind[k] == "scheduled"}

    for t in range(1, steps + 1):
        year = base + t
        # common events
        jump = {k: np.zeros(n) for k in names}
        for j in data.get("jumps") or []:
            years = j.get("years") or list(range(base + 1, horizon + 1))
            if year in years:
                hit = rng.random(n) < float(j["probability"])
                for k, size in j["effects"].items():
                    jump[k] = jump[k] + hit * float(size)
        # the log-level (or logit) move of each shocked indicator before its shock
        mean_move = {}
        for k in shocked:
            proc = inds[k]["process"]
            if kind[k] == "ar1_growth":
                phi = float(proc["persistence"])
                mean_move[k] = mu[k] + phi * (growth_prev[k] - mu[k])
            elif kind[k] in ("logit_share", "logistic"):
                mean_move[k] = drift[k]
            else:
                mean_move[k] = mu[k]
        observed = [k for k in shocked if year in observations.get(k, {})]
        eps = np.zeros((len(shocked), n))
        if observed:
            o = [pos[k] for k in observed]
            u = [pos[k] for k in shocked if k not in observed]
            for k in observed:
                level = _hidden_level(inds[k]["process"], observations[k][year])
                resid = level - state[k] - mean_move[k] - jump[k]
                if np.all(vol[k] > 0):
                    eps[pos[k]] = resid / vol[k]
                    if k in vol_factor:  # the density's 1/σ: a path's own with an estimated volatility
                        log_w = log_w - np.log(vol_factor[k])
                else:
                    log_w = np.where(np.abs(resid) > 1e-9, -np.inf, log_w)
            r_oo = corr[np.ix_(o, o)]
            e_o = eps[o]
            log_w = log_w - 0.5 * np.einsum("in,in->n", e_o, np.linalg.solve(r_oo, e_o))
            if u:
                reg = corr[np.ix_(u, o)] @ np.linalg.inv(r_oo)
                cov = corr[np.ix_(u, u)] - reg @ corr[np.ix_(o, u)]
                w_eig, v_eig = np.linalg.eigh((cov + cov.T) / 2)
                root = v_eig * np.sqrt(np.clip(w_eig, 0, None))
                eps[u] = reg @ e_o + root @ rng.standard_normal((len(u), n))
        elif shocked:
            eps = factor @ rng.standard_normal((len(shocked), n))
            if shocks["distribution"] == "student_t":
                dof = float(shocks["dof"])
                eps = eps * np.sqrt((dof - 2) / rng.chisquare(dof, n))
            elif shocks["distribution"] == "two_piece":
                eps = _two_piece(eps, float(shocks["skew"]))
        for k in shocked:
            move = mean_move[k] + vol[k] * eps[pos[k]]
            previous = state[k]
            state[k] = previous + move + jump[k]
            if kind[k] == "ar1_growth":
                growth_prev[k] = move
            x = observations.get(k, {}).get(year)
            if x is not None:  # the observed value itself (its growth carries on in an AR(1))
                state[k] = np.full(n, _hidden_level(inds[k]["process"], x))
                if kind[k] == "ar1_growth":
                    growth_prev[k] = state[k] - previous - jump[k]
            if kind[k] == "logit_share":
                value[k][t] = special.expit(state[k])
            elif kind[k] == "logistic":
                value[k][t] = float(inds[k]["process"]["ceiling"]) * special.expit(state[k])
            elif kind[k] == "buildout":
                value[k][t] = np.exp(state[k]) + sum(size * (when <= t) for size, when in projects[k])
            else:
                value[k][t] = np.exp(state[k])
        for k in carried:  # scheduled counts: never observed
            proc = inds[k]["process"]
            planned = {int(y): int(v) for y, v in proc["schedule"].items()}.get(year, 0)
            due = planned + carried[k]
            delivery, carry_over = chance[k]  # numbers, or each path's own
            done = rng.binomial(due, delivery)
            carried[k] = rng.binomial(due - done, carry_over)
            value[k][t] = value[k][t - 1] + done
        for k in names:
            if kind[k] != "count":
                continue
            add = inds[k]["process"]["additions"]
            lam = count_mean[k]  # a number, or each path's own
            x = observations.get(k, {}).get(year)
            if x is not None:
                more = x - value[k][t - 1]
                if add["distribution"] == "poisson":
                    logpmf = stats.poisson.logpmf(more, lam)
                else:
                    r = float(add["dispersion"])
                    logpmf = stats.nbinom.logpmf(more, r, r / (r + lam))
                log_w = log_w + np.where(more >= 0, logpmf, -np.inf)
                value[k][t] = x
            elif add["distribution"] == "poisson":
                value[k][t] = value[k][t - 1] + rng.poisson(lam, n)
            else:
                r = float(add["dispersion"])
                value[k][t] = value[k][t - 1] + rng.negative_binomial(r, r / (r + lam), n)

    # derived indicators, in dependency order
    def derive(k):
        proc = inds[k]["process"]
        parts = [proc["numerator"], proc["denominator"]] if kind[k] == "ratio" else proc["terms"]
        for p in parts:
            if kind[p] in ("ratio", "sum") and p not in ready:
                derive(p)
        value[k] = value[parts[0]] / value[parts[1]] if kind[k] == "ratio" else sum(value[p] for p in parts)
        ready.add(k)

    ready: set[str] = set()
    for k in names:
        if kind[k] in ("ratio", "sum") and k not in ready:
            derive(k)
    return value, log_w


def _start(ind: dict, rng: np.random.Generator, n: int) -> np.ndarray:
    """An indicator's start on each of ``n`` paths: a known ``value``; a range ``{low, high}`` whose law
    is normal on the log scale (a level) or the logit scale (a share; a logistic's share of its
    ceiling) with 5 % and 95 % quantiles there, or uniform (``law: uniform``); a normal ``{mean, sd}``
    (within ±6 s.d.). A count's (or scheduled count's) range is drawn as a whole number: uniform on the
    whole numbers low..high, or the log-normal rounded to the nearest."""
    spec = ind["start"]
    if "low" not in spec and "mean" not in spec:
        return np.full(n, float(spec["value"]))
    if "mean" in spec:
        return float(spec["mean"]) + float(spec["sd"]) * np.clip(rng.standard_normal(n), -6.0, 6.0)
    low, high = float(spec["low"]), float(spec["high"])
    kind = ind["process"]["kind"]
    if kind in ("count", "scheduled"):  # a whole number: uniform on low..high, or the log-normal rounded
        if spec.get("law") == "uniform":
            return rng.integers(int(low), int(high), size=n, endpoint=True).astype(float)
        sd = (math.log(high) - math.log(low)) / (2 * stats.norm.ppf(0.95))
        return np.rint(rng.lognormal(math.log(math.sqrt(low * high)), sd, n))
    if spec.get("law") == "uniform":
        return rng.uniform(low, high, n)
    top = 1.0 if kind == "logit_share" else float(ind["process"]["ceiling"]) if kind == "logistic" else None
    scale = (lambda x: math.log(x / (top - x))) if top else math.log
    centre, sd = (scale(low) + scale(high)) / 2, (scale(high) - scale(low)) / (2 * stats.norm.ppf(0.95))
    h = rng.normal(centre, sd, n)
    return top * special.expit(h) if top else np.exp(h)


def simulate(data: dict, paths: int, seed: int) -> ReferenceResult:
    """Simulate ``paths`` paths of the scenario ``data`` (the YAML mapping) with NumPy's generator."""
    value, log_w = simulate_values(data, paths, seed)
    inds: dict = data["indicators"]
    kind = {k: v["process"]["kind"] for k, v in inds.items()}
    base = int(data["base_year"])
    n = paths
    w = np.exp(log_w - log_w.max()) if np.isfinite(log_w.max()) else np.zeros(n)
    probability, met_all = {}, np.ones(n, dtype=bool)
    for target in data["targets"]:
        k, tk = target["indicator"], target["kind"]
        thr, cmp = float(target["threshold"]), target.get("comparator", ">=")
        band = float(target.get("tolerance", 0.1)) * abs(thr)
        low, high = thr - band, thr + band
        by = int(target["by"]) - base
        x = value[k]
        is_count = kind[k] in ("count", "scheduled")
        if tk in ("level", "share", "count_stock"):
            met = _compare(x[by], cmp, thr, low, high)
        elif tk == "cagr":
            met = _compare((x[by] / x[0]) ** (1.0 / by) - 1.0, cmp, thr, low, high)
        elif tk == "first_passage":
            met = np.any([_compare(x[s], cmp, thr, low, high) for s in range(by + 1)], axis=0)
        elif tk == "growth_each_year":
            met = np.all([_compare(x[s] / x[s - 1] - 1.0, cmp, thr, low, high) for s in range(1, by + 1)], axis=0)
        elif tk == "count_per_year":
            met = np.all([_compare(x[s] - x[s - 1] if is_count else x[s], cmp, thr, low, high)
                          for s in range(1, by + 1)], axis=0)
        elif tk == "in_year":  # the increase during the year `by` alone
            met = _compare(x[by] - x[by - 1], cmp, thr, low, high)
        else:  # cumulative
            total = sum(x[s] - x[s - 1] if is_count else x[s] for s in range(1, by + 1))
            met = _compare(total, cmp, thr, low, high)
        probability[target["id"]] = float((w * met).sum() / w.sum()) if w.sum() > 0 else math.nan
        met_all &= met
    joint = float((w * met_all).sum() / w.sum()) if w.sum() > 0 else math.nan
    ess = float(w.sum() ** 2 / (w * w).sum()) if w.sum() > 0 else 0.0
    return ReferenceResult(probability=probability, joint=joint, effective_sample_size=ess)
