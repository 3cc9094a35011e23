"""Fitting a process to an indicator's yearly history, with the parameters' uncertainty.

The fitted ``process:`` block carries that uncertainty so that the engine, running it, gives the
predictive distribution rather than a plug-in one. For the random walks on a transformed scale
(``lognormal`` on ``ln X``, ``logit_share`` on ``logit s``) this is exact: with ``n`` yearly changes
of mean ``μ̂`` and s.d. ``s``, the block says ``growth: {log_mean: μ̂, log_sd: s/√n}`` and
``volatility: {estimate: s, df: n − 1}``; the engine draws σ per path from its posterior and scales
the growth's deviation with it, so an H-year change is ``H·μ̂ + s·√(H + H²/n)·T(n−1)``, the Student-t
predictive (with 8 yearly changes and a 5-year horizon a plug-in normal that says 2 % comes true
about 9 % of the time; the t predictive is calibrated). ``ar1_growth`` carries the uncertainty of
its long-run growth and volatility; its persistence is a point estimate (AICc charges for it).
``count`` carries the uncertainty of its yearly mean additions.

Irregular histories:

- a gap of k years: the change over it counts as k years of change (weighted least squares);
- a break (a one-off jump, such as a change of statistical scope) named in ``breaks``: the change
  into that year is left out (a level shift, not growth). A change that looks like a break but is
  not named is kept (which widens the volatility: the conservative side) and reported in ``notes``;
- a value marked as an estimate (weight < 1): the changes into and out of it count for less, and
  the degrees of freedom fall with them;
- fewer than five changes: the volatility has too few degrees of freedom for the engine (its
  Student-t tails would overflow); the fit completes it to ``MIN_DF`` with ``PRIOR_VOLATILITY``,
  says so in ``notes`` and labels the block an assumption (two points: the prior alone).

statsmodels does the estimation (WLS for the random walks, SARIMAX for the AR(1) and for the
likelihoods that AICc compares, GLM and NegativeBinomial for counts); it is imported here, lazily,
so that importing targetsim stays cheap.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from targetsim.errors import FitError
from targetsim.model.parse import MAX_VOLATILITY

PROCESS_CHOICES = ("auto", "lognormal", "ar1_growth", "logit_share", "count")
# Units whose values are shares (``percent`` is divided by 100: shares are simulated as fractions).
SHARE_UNITS = frozenset({"percent", "fraction", "share"})
COUNT_UNITS = frozenset({"count"})
# Units no process here describes (a rank is ordinal).
UNFITTABLE_UNITS = frozenset({"rank"})
# The kinds that suit each sort of value (what the unit says it is): the candidates ``auto`` compares.
CANDIDATES = {"share": ("logit_share",), "count": ("count",), "level": ("lognormal", "ar1_growth")}
# The fewest changes an AR(1) in the growth is fitted from.
AR1_MIN_CHANGES = 4
# A value marked as an estimate counts this much (the changes into and out of it are down-weighted).
ESTIMATE_WEIGHT = 0.5
# The fewest degrees of freedom a fitted volatility is given. Below 4 the Student-t predictive's
# tails are so heavy on the log scale (Cauchy at 1 df) that for a volatile series the engine's
# overflow check (the level's 1-in-10⁹ tail must stay below 1e250) refuses the run. A history with
# fewer than 5 changes has its volatility completed by a prior: PRIOR_VOLATILITY with the missing
# degrees of freedom (an ASSUMPTION, labelled in the block): 0.15 a year on the log (or logit)
# scale, about the median yearly log s.d. of the shipped national proxy series.
MIN_DF = 4.0
PRIOR_VOLATILITY = 0.15
# A change whose leave-one-out p-value, times the number of changes (Bonferroni), is below this is
# reported as a possible break.
BREAK_P_VALUE = 0.01
# Significant digits of the numbers written into a process block.
DIGITS = 6


@dataclass(frozen=True)
class Point:
    """One observed value; ``weight`` 1 for an observation, less for a value marked as an estimate;
    ``where`` says where it comes from (``baselines/x.csv line 12``)."""

    year: int
    value: float
    weight: float = 1.0
    where: str = ""


@dataclass(frozen=True)
class Fit:
    """What :func:`fit` found.

    ``estimates`` and ``std_errors`` are keyed by parameter (``log_growth``, ``growth``,
    ``volatility``, ``persistence``, ``drift``, ``mean``, ``dispersion``); ``criteria`` holds the
    AICc of every candidate tried (``inf`` where the history is too short for it); ``process`` is
    the mapping for a scenario's ``process:`` key and :meth:`parameters` the one for its
    ``parameters:`` key.
    """

    indicator: str | None
    unit: str | None
    kind: str
    estimates: Mapping[str, float]
    std_errors: Mapping[str, float]
    criteria: Mapping[str, float]
    n_points: int
    n_changes: int
    df: float
    years: tuple[int, ...]
    process: Mapping[str, Any]
    source: str
    assumption: str | None = None
    notes: tuple[str, ...] = ()
    # the volatility the history alone gives, and its degrees of freedom (0: none), before any prior
    data_volatility: tuple[float, float] = (math.nan, 0.0)

    def parameters(self) -> dict[str, str]:
        """The ``parameters:`` mapping: where the fitted values come from (and the assumption, if any)."""
        out = {"source": self.source}
        if self.assumption:
            out["assumption"] = self.assumption
        return out

    def blocks(self) -> dict[str, Any]:
        """The indicator's ``process`` and ``parameters`` keys, as written into a scenario (whole
        numbers as integers: ``df: 5``)."""
        return {"process": _plain(self.process), "parameters": self.parameters()}

    def to_yaml(self) -> str:
        """A ready-to-paste ``process:`` and ``parameters:`` block (two keys of an indicator)."""
        import yaml

        blocks = self.blocks()
        text = yaml.safe_dump({"process": blocks["process"]}, sort_keys=False, default_flow_style=None,
                              allow_unicode=True, width=100)
        text += yaml.safe_dump({"parameters": blocks["parameters"]}, sort_keys=False, allow_unicode=True,
                               width=100)
        return text

    def summary(self) -> str:
        """A few lines for a terminal: estimates with standard errors, the criteria, the points used."""
        name = self.indicator or "series"
        lines = [f"{name}: {self.kind} fitted to {self.n_points} points "
                 f"({self.years[0]}–{self.years[-1]}), {self.n_changes} changes, {self.df:g} df"]
        for key, value in self.estimates.items():
            se = self.std_errors.get(key)
            lines.append(f"  {key:<16} {value:>12.6g}" + (f"   s.e. {se:.4g}" if se is not None else ""))
        if self.criteria:
            crit = ", ".join(f"{k} {_aicc_text(v)}" for k, v in self.criteria.items())
            lines.append(f"  AICc: {crit}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


@dataclass(frozen=True)
class _Candidate:
    kind: str
    estimates: dict[str, float]
    std_errors: dict[str, float]
    loglik: float
    n_params: int
    n_obs: int
    df: float
    process: dict[str, Any]
    notes: tuple[str, ...] = ()
    assumption: str | None = None
    criteria: Mapping[str, float] | None = None  # the criteria of variants compared inside the kind
    data_volatility: tuple[float, float] = (math.nan, 0.0)

    @property
    def aicc(self) -> float:
        return aicc(self.loglik, self.n_params, self.n_obs)


@dataclass(frozen=True)
class _Changes:
    """The history as changes between consecutive used points, on the process's scale."""

    start: np.ndarray      # year each change starts
    years: np.ndarray      # its length in years (> 1 across a gap)
    change: np.ndarray     # total change over it
    weight: np.ndarray     # 1, or less when it touches an estimate
    notes: tuple[str, ...] = field(default=())


def aicc(loglik: float, n_params: int, n_obs: int) -> float:
    """Akaike's criterion corrected for small samples; ``inf`` when ``n_obs <= n_params + 1``."""
    if n_obs - n_params - 1 <= 0 or not math.isfinite(loglik):
        return math.inf
    return -2.0 * loglik + 2.0 * n_params + 2.0 * n_params * (n_params + 1) / (n_obs - n_params - 1)


def value_sort(unit: str | None) -> str:
    """``share``, ``count`` or ``level``: what the unit says the series is (no unit: a level)."""
    if unit in SHARE_UNITS:
        return "share"
    if unit in COUNT_UNITS:
        return "count"
    return "level"


def fit(years: Sequence[int], values: Sequence[float], process: str = "auto", *, unit: str | None = None,
        weights: Sequence[float] | None = None, breaks: Sequence[int] = (), indicator: str | None = None,
        where: Sequence[str] | None = None, origin: str | None = None, excluded: Sequence[str] = ()) -> Fit:
    """Fit ``process`` (a kind, or ``auto``: the lowest AICc among the kinds that suit the unit) to a
    yearly history.

    ``years`` need not be consecutive (a gap counts as several years of change); ``weights`` below 1
    mark values that are estimates; ``breaks`` are years whose change from the previous point is a
    one-off level shift (left out). ``unit`` decides what the values are (``percent``/``fraction``:
    a share, simulated as a fraction; ``count``: a whole-number stock; anything else a positive
    level). ``where`` (one string per point), ``origin`` (the file) and ``excluded`` (rows left out,
    already described) only feed the ``source`` text of the block.

    Raises :class:`~targetsim.errors.FitError` with the reason and the fix when the history cannot
    be fitted (fewer than two points, a value the process cannot take, a kind that does not suit the
    unit).
    """
    name = indicator or "the series"
    if process not in PROCESS_CHOICES:
        raise FitError(f"{name}: unknown process {process!r}; choose one of {', '.join(PROCESS_CHOICES)}")
    if unit in UNFITTABLE_UNITS:
        raise FitError(f"{name}: a {unit} is ordinal; none of {', '.join(PROCESS_CHOICES[1:])} describes it")
    points = _points(years, values, weights, where, name)
    sort = value_sort(unit)
    kinds = CANDIDATES[sort] if process == "auto" else (process,)
    if process != "auto" and process not in CANDIDATES[sort]:
        raise FitError(f"{name}: a {process} does not suit unit {unit!r} (a {sort}); use "
                       f"{' or '.join(CANDIDATES[sort])}, or --process auto")
    breaks = tuple(sorted(set(int(b) for b in breaks)))
    unknown = [b for b in breaks if b not in {p.year for p in points[1:]}]
    if unknown:
        raise FitError(f"{name}: break year {unknown[0]} is not an observed year after the first "
                       f"({', '.join(str(p.year) for p in points)})")
    values_on_scale = _to_scale(sort, unit, points, name)
    changes = _changes(points, values_on_scale, breaks, name)
    if process == "ar1_growth" and changes.change.size < AR1_MIN_CHANGES:
        raise FitError(f"{name}: an ar1_growth needs at least {AR1_MIN_CHANGES} changes, the history has "
                       f"{changes.change.size}; use lognormal (or auto)")
    if sort == "count":
        candidates = [_fit_count(changes)]
    else:
        candidates = [_FITTERS[kind](changes, points, values_on_scale, breaks) for kind in kinds]
    criteria: dict[str, float] = {}
    for c in candidates:
        criteria.update(c.criteria or {c.kind: c.aicc})
    best = min(candidates, key=lambda c: (c.aicc, c.n_params))
    volatility = best.estimates.get("volatility", 0.0)
    if volatility > MAX_VOLATILITY:
        raise FitError(f"{name}: the fitted volatility {volatility:.3g} a year exceeds {MAX_VOLATILITY:g}, the most a "
                       f"scenario accepts ({changes.change.size} changes, {points[0].year}–{points[-1].year}): check "
                       "the values' units, name a change of statistical scope with --break YEAR, or fit a calmer "
                       "window with --until YEAR")
    notes = list(changes.notes) + list(best.notes)
    if process == "auto" and len(candidates) > 1 and all(math.isinf(c.aicc) for c in candidates):
        notes.append(f"too few changes ({changes.change.size}) for AICc to compare "
                     f"{', '.join(c.kind for c in candidates)}: the simplest, {best.kind}, is used")
    source = _source_text(name, best, criteria, points, origin, excluded, breaks)
    return Fit(indicator=indicator, unit=unit, kind=best.kind, estimates=best.estimates,
               std_errors=best.std_errors, criteria=criteria, n_points=len(points),
               n_changes=int(changes.change.size), df=best.df, years=tuple(p.year for p in points),
               process=best.process, source=source, assumption=best.assumption, notes=tuple(notes),
               data_volatility=best.data_volatility)


# --------------------------------------------------------------------------- the history

def _points(years: Sequence[int], values: Sequence[float], weights: Sequence[float] | None,
            where: Sequence[str] | None, name: str) -> list[Point]:
    years_a = [int(y) for y in years]
    values_a = [float(v) for v in values]
    if len(years_a) != len(values_a):
        raise FitError(f"{name}: {len(years_a)} years but {len(values_a)} values")
    weights_a = [1.0] * len(years_a) if weights is None else [float(w) for w in weights]
    where_a = [""] * len(years_a) if where is None else list(where)
    if len(weights_a) != len(years_a) or len(where_a) != len(years_a):
        raise FitError(f"{name}: weights and where need one entry per year")
    if len(set(years_a)) != len(years_a):
        dup = sorted(y for y in set(years_a) if years_a.count(y) > 1)[0]
        raise FitError(f"{name}: year {dup} appears twice; keep one value per year")
    bad = [(y, v) for y, v in zip(years_a, values_a) if not math.isfinite(v)]
    if bad:
        raise FitError(f"{name}: the value for {bad[0][0]} is not a finite number ({bad[0][1]})")
    if any(not 0.0 < w <= 1.0 for w in weights_a):
        raise FitError(f"{name}: weights lie in (0, 1] (1: observed; less: an estimate)")
    points = sorted((Point(y, v, w, s) for y, v, w, s in zip(years_a, values_a, weights_a, where_a)),
                    key=lambda p: p.year)
    if len(points) < 2:
        have = f"only {points[0].year}" if points else "none"
        raise FitError(f"{name}: a fit needs at least two observed years ({have}); add observed rows to the "
                       "baselines, or pool it with related series (targetsim fit --indicator A --indicator B)")
    return points


def _to_scale(sort: str, unit: str | None, points: list[Point], name: str) -> np.ndarray:
    """The values on the scale the process moves on: ``ln x``, ``logit s``, or the count itself."""
    v = np.array([p.value for p in points], dtype=np.float64)
    if sort == "share":
        frac = v / 100.0 if unit == "percent" else v
        bad = [p for p, f in zip(points, frac) if not 0.0 < f < 1.0]
        if bad:
            raise FitError(f"{name}: a share lies strictly between 0 and 1 (0 and 100 %), got {bad[0].value:g} "
                           f"in {bad[0].year}{_at(bad[0])}")
        return np.log(frac / (1.0 - frac))
    if sort == "count":
        bad = [p for p in points if p.value < 0 or p.value != int(p.value)]
        if bad:
            raise FitError(f"{name}: a count is a whole number ≥ 0, got {bad[0].value:g} in {bad[0].year}"
                           f"{_at(bad[0])}")
        return v
    bad = [p for p in points if not p.value > 0]
    if bad:
        raise FitError(f"{name}: a level process needs positive values, got {bad[0].value:g} in {bad[0].year}"
                       f"{_at(bad[0])}; a share needs unit percent or fraction")
    return np.log(v)


def _at(p: Point) -> str:
    return f" ({p.where})" if p.where else ""


def _changes(points: list[Point], z: np.ndarray, breaks: tuple[int, ...], name: str) -> _Changes:
    notes = []
    start, length, change, weight = [], [], [], []
    for a, b, za, zb in zip(points[:-1], points[1:], z[:-1], z[1:]):
        if b.year in breaks:
            notes.append(f"break at {b.year}: the change {a.year}→{b.year} is a level shift, left out")
            continue
        k = b.year - a.year
        if k > 1:
            notes.append(f"gap {a.year}→{b.year}: its change counts as {k} years")
        start.append(a.year)
        length.append(k)
        change.append(zb - za)
        weight.append(min(a.weight, b.weight))
    low = [p.year for p in points if p.weight < 1.0]
    if low:
        notes.append(f"estimates ({', '.join(map(str, low))}): the changes into and out of them count "
                     f"{ESTIMATE_WEIGHT:g}")
    if not change:
        raise FitError(f"{name}: no change left to fit once the breaks are left out; name fewer breaks")
    return _Changes(np.array(start, dtype=np.int64), np.array(length, dtype=np.float64),
                    np.array(change, dtype=np.float64), np.array(weight, dtype=np.float64), tuple(notes))


# --------------------------------------------------------------------------- random walks (lognormal, logit)

def _random_walk(changes: _Changes, *, log_scale: bool) -> tuple[float, float, float, float, tuple[str, ...],
                                                                 str | None, tuple[float, float]]:
    """``(μ̂, its s.e., σ̂, df, notes, assumption, (σ̂ and df of the data alone))`` of changes
    ``d_i ~ N(k_i μ, k_i σ² / w_i)``, by WLS."""
    import statsmodels.api as sm

    k, d, w = changes.years, changes.change, changes.weight
    n = d.size
    res = sm.WLS(d / k, np.ones(n), weights=k * w).fit()
    mu = float(res.params[0])
    df_data = max(float(np.sum(w)) - 1.0, 0.0)
    s2_data = float(res.scale) if n >= 2 else 0.0
    notes = _possible_breaks(changes, mu) if n >= 2 else []
    sigma, df, note, assumption = _complete_with_prior(s2_data, df_data, "log" if log_scale else "logit")
    notes.extend(note)
    se = sigma / math.sqrt(float(np.sum(k * w)))
    return mu, se, sigma, df, tuple(notes), assumption, (math.sqrt(s2_data), df_data)


def _complete_with_prior(s2: float, df: float, scale: str) -> tuple[float, float, list[str], str | None]:
    """``(σ, df, notes, assumption)``: the data's ``s²`` with ``df`` degrees of freedom, completed up
    to :data:`MIN_DF` by the prior volatility (a pooled variance: ``(df·s² + ν₀·s₀²) / MIN_DF``)."""
    if df >= MIN_DF:
        return math.sqrt(s2), df, [], None
    nu0 = MIN_DF - df
    sigma = math.sqrt((df * s2 + nu0 * PRIOR_VOLATILITY**2) / MIN_DF)
    have = f"{df:g} degree(s) of freedom" if df > 0 else "no degree of freedom"
    note = (f"the history gives the volatility {have}: completed to {MIN_DF:g} with the prior {PRIOR_VOLATILITY:g} "
            f"a year on the {scale} scale ({nu0:g} df), giving {sigma:.4g}")
    assumption = (f"volatility prior {PRIOR_VOLATILITY:g} a year with {nu0:g} of its {MIN_DF:g} df (ASSUMPTION: "
                  f"the history is too short to estimate it alone; about the median yearly log s.d. of the shipped "
                  f"national proxy series)")
    return sigma, MIN_DF, [note], assumption


def _possible_breaks(changes: _Changes, mu: float) -> list[str]:
    """Changes far from the rest (leave-one-out t, Bonferroni): reported, kept (conservative)."""
    from scipy import stats

    k, d, w = changes.years, changes.change, changes.weight
    n = d.size
    if n < 4:
        return []
    out = []
    for i in range(n):
        keep = np.arange(n) != i
        kk, dd, ww = k[keep], d[keep], w[keep]
        m = float(np.sum(dd * ww) / np.sum(kk * ww))
        s2 = float(np.sum(ww * (dd - kk * m) ** 2 / kk) / (keep.sum() - 1))
        scale = math.sqrt(s2 * (k[i] / w[i] + k[i] ** 2 / float(np.sum(kk * ww))))
        if scale == 0:
            continue
        t = (d[i] - k[i] * m) / scale
        p = 2.0 * stats.t.sf(abs(t), keep.sum() - 1)
        if p * n < BREAK_P_VALUE:
            end = int(changes.start[i] + k[i])
            out.append(f"possible break at {end}: the change {int(changes.start[i])}→{end} lies {abs(t):.1f} s.d. "
                       f"from the others (p = {p:.2g}); it is kept, which widens the volatility. If it is a "
                       f"change of statistical scope, pass --break {end}")
    return out


def _state_space_loglik(z_points: np.ndarray, years: np.ndarray, breaks: tuple[int, ...],
                        ar: bool) -> tuple[float, Any]:
    """The exact Gaussian log-likelihood of the changes under a random walk with drift (``ar``
    False) or an AR(1) in the yearly change, from SARIMAX on the level with the missing years as
    gaps and a step for each break (the random walk's is also :func:`_random_walk_loglik`, in
    closed form)."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    first, last = int(years[0]), int(years[-1])
    full = np.full(last - first + 1, np.nan)
    full[years - first] = z_points
    exog = None
    if breaks:
        t = np.arange(first, last + 1)
        exog = np.column_stack([(t >= b).astype(np.float64) for b in breaks])
    model = SARIMAX(full, exog=exog, order=(1 if ar else 0, 1, 0), trend="c")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Nelder–Mead reaches the same maximum (to ~1e-7 in the log-likelihood) in a third of
        # L-BFGS's time on these 3–4 parameters; L-BFGS takes over if it does not converge
        res = model.fit(disp=False, method="nm", maxiter=2000)
        if not res.mle_retvals.get("converged", False):
            res = model.fit(disp=False)
    return float(res.llf), res


def _random_walk_loglik(changes: _Changes) -> float:
    """The exact Gaussian log-likelihood, at its maximum, of changes ``d_i ~ N(k_i μ, k_i σ²)``: what
    SARIMAX(0,1,0) with a constant gives on the level with gaps (a test checks), in closed form.
    Unweighted, like the AR(1)'s, so that AICc compares like with like. (With breaks SARIMAX's step
    leaves the break year in with a zero residual, so :func:`_random_walk_fit_loglik` uses SARIMAX
    then, as the AR(1) does.)"""
    k, d = changes.years, changes.change
    n = d.size
    mu = float(d.sum() / k.sum())
    s2 = float(np.sum((d - k * mu) ** 2 / k) / n)
    if s2 <= 0.0:
        return math.inf
    return float(-0.5 * (n * math.log(2 * math.pi * s2) + np.sum(np.log(k)) + n))


def _random_walk_fit_loglik(changes: _Changes, points: list[Point], z: np.ndarray, breaks: tuple[int, ...]) -> float:
    if not breaks:
        return _random_walk_loglik(changes)
    return _state_space_loglik(z, np.array([p.year for p in points]), breaks, ar=False)[0]


def _fit_lognormal(changes: _Changes, points: list[Point], z: np.ndarray, breaks: tuple[int, ...]) -> _Candidate:
    mu, se, sigma, df, notes, assumption, data = _random_walk(changes, log_scale=True)
    loglik = _random_walk_fit_loglik(changes, points, z, breaks)
    process = {"kind": "lognormal", "growth": {"log_mean": _r(mu), "log_sd": _r(se)},
               "volatility": {"estimate": _r(sigma), "df": _r(df)}}
    return _Candidate("lognormal", {"log_growth": mu, "growth": math.expm1(mu), "volatility": sigma},
                      {"log_growth": se, "growth": math.exp(mu) * se}, loglik, 2 + len(breaks),
                      int(changes.change.size), df, process, notes, assumption, data_volatility=data)


def _fit_logit(changes: _Changes, points: list[Point], z: np.ndarray, breaks: tuple[int, ...]) -> _Candidate:
    mu, se, sigma, df, notes, assumption, data = _random_walk(changes, log_scale=False)
    loglik = _random_walk_fit_loglik(changes, points, z, breaks)
    process = {"kind": "logit_share", "drift": {"mean": _r(mu), "sd": _r(se)},
               "volatility": {"estimate": _r(sigma), "df": _r(df)}}
    return _Candidate("logit_share", {"drift": mu, "volatility": sigma}, {"drift": se}, loglik,
                      2 + len(breaks), int(changes.change.size), df, process, notes, assumption,
                      data_volatility=data)


def _fit_ar1(changes: _Changes, points: list[Point], z: np.ndarray, breaks: tuple[int, ...]) -> _Candidate:
    n = int(changes.change.size)
    n_params = 3 + len(breaks)
    years = np.array([p.year for p in points])
    if n < AR1_MIN_CHANGES:  # SARIMAX cannot tell persistence from noise in three changes
        return _Candidate("ar1_growth", {}, {}, -math.inf, n_params, n, 0.0, {},
                          (f"{n} changes are too few for an AR(1) in the growth",))
    loglik, res = _state_space_loglik(z, years, breaks, ar=True)
    names = list(res.model.param_names)
    params, cov = np.asarray(res.params), np.asarray(res.cov_params())
    c_i, phi_i, s2_i = names.index("intercept"), names.index("ar.L1"), names.index("sigma2")
    c, phi = float(params[c_i]), float(params[phi_i])
    m = c / (1.0 - phi)
    grad = np.zeros(len(params))
    grad[c_i], grad[phi_i] = 1.0 / (1.0 - phi), c / (1.0 - phi) ** 2
    var_m = float(grad @ cov @ grad)
    se_m = math.sqrt(var_m) if var_m > 0 and math.isfinite(var_m) else math.nan
    df_data = float(n - n_params)
    s2 = float(params[s2_i]) * n / df_data  # the MLE's σ² divides by n; unbias it
    sigma, df, prior_notes, assumption = _complete_with_prior(s2, df_data, "log")
    notes = list(prior_notes)
    if not math.isfinite(se_m):
        se_m = abs(m) + sigma  # the estimate's covariance is degenerate: as wide as the estimate itself
        notes.append("the AR(1) fit's covariance is degenerate: the long-run growth's s.e. is set as wide "
                     "as the estimate plus the volatility")
    last = changes.change[-1] / changes.years[-1]
    process = {"kind": "ar1_growth", "long_run_growth": {"log_mean": _r(m), "log_sd": _r(se_m)},
               "persistence": _r(min(max(phi, -0.99), 0.99)), "volatility": {"estimate": _r(sigma), "df": _r(df)},
               "initial_growth": _r(math.expm1(last))}
    se_phi = float(np.sqrt(cov[phi_i, phi_i])) if cov[phi_i, phi_i] > 0 else math.nan
    return _Candidate("ar1_growth", {"log_growth": m, "growth": math.expm1(m), "persistence": phi,
                                     "volatility": sigma},
                      {"log_growth": se_m, "growth": math.exp(m) * se_m, "persistence": se_phi},
                      loglik, n_params, n, df, process, tuple(notes), assumption)


_FITTERS = {"lognormal": _fit_lognormal, "logit_share": _fit_logit, "ar1_growth": _fit_ar1}


# --------------------------------------------------------------------------- counts

def _fit_count(changes: _Changes) -> _Candidate:
    """Additions over each change (``k`` years: Poisson(kλ) or its negative binomial) by GLM; the
    negative binomial is kept when AICc prefers it."""
    import statsmodels.api as sm

    k, added, w = changes.years, changes.change, changes.weight
    if np.any(added < 0):
        i = int(np.argmax(added < 0))
        raise FitError(f"the stock fell from {int(changes.start[i])} to {int(changes.start[i] + k[i])} "
                       f"(by {-added[i]:g}): a count only adds; fit it as a lognormal level instead "
                       "(give a unit other than count)")
    n = added.size
    ones = np.ones(n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pois = sm.GLM(added, ones, family=sm.families.Poisson(), exposure=k, var_weights=w).fit()
    lam, se_b = math.exp(float(pois.params[0])), float(pois.bse[0])
    poisson = _Candidate("count", {"mean": lam}, {"mean": lam * se_b}, float(pois.llf), 1, n,
                         float(np.sum(w)), _count_block("poisson", lam, lam * se_b, None))
    if n < 4 or np.all(added == added[0]):
        return poisson
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nb = sm.NegativeBinomial(added, ones, exposure=k).fit(disp=0)
        alpha = float(nb.params[-1])
    except Exception:  # noqa: BLE001 - statsmodels raises assorted errors on degenerate data: keep Poisson
        return poisson
    if not (alpha > 1e-8 and math.isfinite(alpha) and nb.mle_retvals.get("converged", True)):
        return poisson
    lam_nb, se_nb = math.exp(float(nb.params[0])), float(nb.bse[0])
    negbin = _Candidate("count", {"mean": lam_nb, "dispersion": 1.0 / alpha},
                        {"mean": lam_nb * se_nb}, float(nb.llf), 2, n, float(np.sum(w)),
                        _count_block("negative_binomial", lam_nb, lam_nb * se_nb, 1.0 / alpha))
    best = negbin if negbin.aicc < poisson.aicc else poisson
    criteria = {"count (poisson)": poisson.aicc, "count (negative_binomial)": negbin.aicc}
    return _Candidate(best.kind, best.estimates, best.std_errors, best.loglik, best.n_params, best.n_obs,
                      best.df, best.process, criteria=criteria)


def _count_block(distribution: str, mean: float, se: float, dispersion: float | None) -> dict[str, Any]:
    additions: dict[str, Any] = {"distribution": distribution, "mean": {"mean": _r(mean), "sd": _r(se)}}
    if dispersion is not None:
        additions["dispersion"] = _r(dispersion)
    return {"kind": "count", "additions": additions}


# --------------------------------------------------------------------------- text

def _r(x: float) -> float:
    return float(f"{x:.{DIGITS}g}")


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, float) and value == int(value) and abs(value) < 1e15:
        return int(value)
    return value


def _aicc_text(v: float) -> str:
    return "n/a (too few points)" if math.isinf(v) else f"{v:.2f}"


def _source_text(name: str, best: _Candidate, criteria: Mapping[str, float], points: list[Point],
                 origin: str | None, excluded: Sequence[str], breaks: tuple[int, ...]) -> str:
    years = ", ".join(f"{p.year}" + (f" ({p.where})" if p.where else "") for p in points)
    where = f" of {origin}" if origin else ""
    crit = "; ".join(f"{k} {_aicc_text(v)}" for k, v in criteria.items())
    text = (f"fitted by targetsim fit ({best.kind}; AICc {crit}) to {len(points)} observed values of {name}"
            f"{where}: {years}")
    if breaks:
        text += f"; breaks at {', '.join(map(str, breaks))} left out"
    if excluded:
        text += f"; not used: {'; '.join(excluded)}"
    return text
