"""Process kinds: one spec each, in one place.

A kind's spec says everything the rest of the package needs to know about it: its class and the
keys of its ``process:`` mapping and how they are read, whether it has a yearly shock of its own
(so that correlations and jumps apply), whether it can be observed, whether it is derived from other
indicators, which start and observed values it accepts, its overflow envelope, how it is packed
into the kernel's arrays, the grid of its quantile sketch, whether a fat-tailed shock leaves it
without a mean, whether its volatility may be estimated (``{estimate, df}``), and how the dataset
and the table describe it. The parser, the overflow check, the plan and the results read the spec;
:func:`check_specs` (run at import) refuses a spec with a part missing. The kernel knows a kind by
its code (:mod:`targetsim.kernels.codes`) and has one branch for it (:mod:`targetsim.kernels.paths`).
CONTRIBUTING.md has the recipe for a new kind.

No I/O and no numba here; numpy for the plan's arrays.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np

from targetsim.kernels.codes import START_LAW_CODES, START_NORMAL_SD  # noqa: F401 - re-exported

KeyPath = tuple[str | int, ...]
# How many s.d. of ln X a quantile sketch's grid spans either side of its centre (10 s.d. leaves
# < 1e-20 of the mass outside for a Gaussian).
SKETCH_SPAN_SD = 10.0
# The keys of an estimated volatility, ``volatility: {estimate, df}``.
ESTIMATED_VOLATILITY_KEYS = ("estimate", "df")


@dataclass(frozen=True)
class Growth:
    """An uncertain parameter: ``Normal(mean, sd)``, drawn once per path (``sd = 0``: fixed).

    ``log``: a growth rate given on the log scale (``growth: {log_mean, log_sd}``): ``ln(1+g)`` is
    ``Normal(mean, sd)`` (what ``targetsim fit`` estimates: the mean yearly log change and its
    standard error); otherwise ``g`` itself is ``Normal(mean, sd)``.
    """

    mean: float
    sd: float = 0.0
    log: bool = False

    @property
    def log_mean(self) -> float:
        """The mean of ``ln(1+g)`` (to first order for a growth given as ``g``)."""
        return self.mean if self.log else math.log1p(self.mean)

    @property
    def log_sd(self) -> float:
        """The s.d. of ``ln(1+g)`` (to first order for a growth given as ``g``)."""
        return self.sd if self.log else self.sd / (1.0 + self.mean)


@dataclass(frozen=True)
class Project:
    """A build-out project: done with ``probability``, in a year uniform on ``earliest..latest``."""

    name: str
    size: float
    probability: float
    earliest: int
    latest: int


@dataclass(frozen=True)
class ProcessSpec:
    """Everything the package knows about one process kind (see the module's docstring).

    ``parse(reader, mapping, path, base_year)`` builds the process from its validated ``process:``
    mapping; ``pack(process, i, arrays, index, base_year)`` writes indicator ``i``'s parameters into
    the plan's arrays; ``grid(process, i, arrays, n_steps, fat, jump_span, lo, hi)`` returns the
    ``(lo, hi)`` of ``ln X`` its sketch spans (``lo``/``hi`` hold the grids of the indicators before
    it, which a derived kind reads); ``envelope(process)`` gives ``(growth, volatility, persistence,
    initial log growth or None, the largest ln X its projects can add or -inf, the volatility's degrees
    of freedom: 0 when it is known)`` for a level driven by log growth, else None. ``arrays`` holds the
    plan's arrays and ``sketch_tail``: the tail probability a heavy-tailed law's grid covers (see
    :func:`sketch_span_sd`). ``hidden_start(process, x0)``: the state its shocks move in the base year
    (a logit, an organic log level); ``observed_level(process, x)``: an observed value on the scale of
    its shocks (``ln x``, a logit); ``scale(process)``: the ceiling of a bounded kind (its value is
    ``scale × share``); ``bounds(process)``: the open interval its values lie in, if any (a threshold
    of a value rule outside it is refused: the rule would be decided by construction).
    ``estimated_volatility``: its ``volatility`` may be written ``{estimate, df}`` (see
    :class:`LognormalProcess`); the process then has a ``volatility_df`` (0: known).
    """

    kind: str
    cls: type
    keys: tuple[str, ...]
    parse: Callable[[Any, Mapping[str, Any], KeyPath, int], Any]
    shocked: bool
    observable: bool
    derived: bool
    whole_numbers: bool
    start_problem: Callable[[float], str | None]
    observation_problem: Callable[[float], str | None]
    envelope: Callable[[Any], tuple[Growth, float, float, float | None, float] | None]
    pack: Callable[[Any, int, dict[str, Any], dict[str, int], int], None]
    grid: Callable[..., tuple[float, float]]
    infinite_mean_under_fat_tails: Callable[[Any], bool]
    describe: Callable[[Any], str]
    additive: bool = False          # its parameter is a drift added as it is (not a growth rate g, as ln(1+g))
    hidden_start: Callable[[Any, float], float] = lambda p, x0: 0.0   # the hidden state in the base year
    observed_level: Callable[[Any, float], float] = lambda p, x: math.nan  # an observation on its shocks' scale
    scale: Callable[[Any], float] = lambda p: 1.0                      # a bounded kind's ceiling
    bounds: Callable[[Any], tuple[float, float] | None] = lambda p: None  # values lie strictly inside
    estimated_volatility: bool = False  # `volatility: {estimate, df}` accepted (the process has volatility_df)


def _g(x: Growth) -> str:
    if x.log:
        return f"ln(1+g) ~ N({x.mean:g}, {x.sd:g})" if x.sd else f"{math.expm1(x.mean):g} (ln(1+g) = {x.mean:g})"
    return f"N({x.mean:g}, {x.sd:g})" if x.sd else f"{x.mean:g}"


def _vol(p: Any) -> str:
    """A process's volatility as the dataset describes it: ``0.08``, or ``0.08 (estimated, 6 df)``."""
    df = volatility_df(p)
    return f"{p.volatility:g}" + (f" (estimated, {df:g} df)" if df > 0 else "")


def volatility_df(p: Any) -> float:
    """The degrees of freedom of a process's estimated volatility; 0 when it is known (or it has none)."""
    return float(getattr(p, "volatility_df", 0.0))


# --------------------------------------------------------------------------- Student's t tail

def _beta_cf(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 100_000):
        delta = 1.0
        for aa in (m * (b - m) * x / ((a - 1.0 + 2 * m) * (a + 2 * m)),
                   -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 1.0 + 2 * m))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            delta = d * c
            h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def student_t_sf(q: float, nu: float) -> float:
    """``P(T > q)`` for Student's t with ``nu`` > 0 degrees of freedom and ``q`` ≥ 0:
    ``I_x(ν/2, 1/2) / 2`` with ``x = ν / (ν + q²)`` (the regularised incomplete beta function)."""
    if q <= 0.0:
        return 0.5
    a, b = 0.5 * nu, 0.5
    x, y = nu / (nu + q * q), q * q / (nu + q * q)  # y = 1 − x, without cancellation
    if x <= 0.0:
        return 0.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(y))
    if x < (a + 1.0) / (a + b + 2.0):
        return 0.5 * front * _beta_cf(a, b, x) / a
    return 0.5 * (1.0 - front * _beta_cf(b, a, y) / b)


@functools.lru_cache(maxsize=256)
def student_t_isf(p: float, nu: float) -> float:
    """The ``q`` with ``P(T > q) = p`` (0 < p < 0.5) for Student's t with ``nu`` > 0 degrees of freedom,
    by bisection on :func:`student_t_sf` (relative accuracy 1e-12; no SciPy at run time)."""
    lo, hi = 0.0, 1.0
    while student_t_sf(hi, nu) > p:
        lo, hi = hi, hi * 2.0
    while hi - lo > 1e-12 * hi:
        mid = 0.5 * (lo + hi)
        if student_t_sf(mid, nu) > p:
            lo = mid
        else:
            hi = mid
    return hi


def sketch_span_sd(df: float, tail: float) -> float:
    """How many s.d. of ``ln X`` (or a logit) a sketch's grid spans either side of its centre:
    SKETCH_SPAN_SD; with an estimated volatility (``df`` = ν > 0), at least the Student-t quantile
    of the probability ``tail``.

    The widening factor: with its volatility estimated, the deviation of ``ln X`` from its centre is
    (to first order) its Gaussian s.d. times ``T_ν``, whose tails reach far beyond 10 s.d. of a normal
    (ν = 1: P(|T| > 10) = 6 %). The grid covers the law's quantiles out to ``tail`` (the plan sets it
    a hundred times beyond the most extreme quantile it reports, see engine.plan), and no further, so
    that its bins stay fine enough for the quantiles it reports.
    """
    if df > 0.0:
        return max(SKETCH_SPAN_SD, student_t_isf(tail, df))
    return SKETCH_SPAN_SD


def _positive_start(kind: str) -> Callable[[float], str | None]:
    return lambda v: None if v > 0 else f"a {kind} indicator needs a positive start value, got {v:g}"


def _positive_observation(kind: str) -> Callable[[float], str | None]:
    return lambda v: None if v > 0 else f"an observed {kind} value must be positive, got {v:g}"


def _never(_: Any) -> None:
    return None


def _not_observable(_: float) -> str:
    return "not observable"  # never asked: the parser refuses observations of kinds that are not observable


def _no_envelope(_: Any) -> None:
    return None


def _log_level_grid(proc: Any, i: int, a: dict[str, Any], n_steps: int, fat: float, jump_span: np.ndarray,
                    lo: np.ndarray, hi: np.ndarray) -> tuple[float, float]:
    """The expected log path ± SKETCH_SPAN_SD s.d. (yearly shocks and parameter uncertainty, by the
    delta method; doubled for fat-tailed shocks, widened by jumps, and widened to the Student-t's
    tail for an estimated volatility: :func:`sketch_span_sd`)."""
    steps = np.arange(n_steps + 1)
    span_sd = sketch_span_sd(a["vol_df"][i], a["sketch_tail"])  # wider for an estimated volatility
    if a["additive"][i]:  # a growth given on the log scale (or a drift)
        drift, drift_sd = a["p_mean"][i], a["p_sd"][i]
    else:
        drift = math.log1p(a["p_mean"][i])
        drift_sd = a["p_sd"][i] / (1.0 + a["p_mean"][i])
    shock_sd = a["vol"][i] * fat
    ar1 = proc.kind == "ar1_growth"
    if ar1:  # persistence amplifies the long-run variance of the level
        shock_sd /= max(1e-3, 1.0 - abs(a["phi"][i]))
        drift = max(abs(drift), abs(a["r0"][i]))
    spread = np.sqrt(shock_sd**2 * steps + drift_sd**2 * steps**2)
    if a["x0_spread"][i] > 0.0:  # an uncertain start: its spread adds to every year's
        spread = np.sqrt(spread**2 + a["x0_spread"][i] ** 2)
    centre = math.log(a["x0"][i]) + drift * steps
    low = (centre - span_sd * spread).min() - jump_span[i] - (abs(drift) * n_steps if ar1 else 0)
    high = (centre + span_sd * spread).max() + jump_span[i]
    if proc.kind == "buildout":
        sizes = np.asarray(a["proj_size"], dtype=np.float64)[np.asarray(a["proj_ind"], dtype=np.int64) == i]
        high = max(high, math.log(a["x0"][i] + sizes.sum()) + 1.0)
    return float(low), float(high)


def _fat_if_volatile(proc: Any) -> bool:
    """Whether fat tails leave the level without a mean: ``E[exp(σε)] = ∞`` for a Student-t ``ε``,
    and, for an estimated volatility, over the scaled inverse-χ² law of ``σ²`` (with any shocks; with
    an estimate of 0 too when its growth is uncertain: ``(1+g)^t`` with ``g`` Student-t has no mean
    once ``t ≥ ν``, and is taken as undefined from the first year)."""
    if proc.kind == "buildout":
        return proc.organic.volatility > 0
    if volatility_df(proc) > 0:
        growth = proc.long_run_growth if proc.kind == "ar1_growth" else proc.growth
        return proc.volatility > 0 or growth.sd > 0
    return proc.volatility > 0


# --------------------------------------------------------------------------- lognormal

@dataclass(frozen=True)
class LognormalProcess:
    """``ln X(t+1) = ln X(t) + ln(1+g) + σ·ε(t)``, ``g ~ Normal(growth.mean, growth.sd)``.

    A known volatility (``volatility_df`` 0): ``σ = volatility``. An estimated one (``volatility:
    {estimate, df}``: ``volatility`` is the estimate, ``volatility_df`` = ν ≥ 1 its degrees of freedom):
    each path draws its own ``σ = volatility·w``, ``w = sqrt(ν / χ²_ν)``, once (the posterior of σ
    under the usual non-informative prior: σ² scaled inverse-χ²), and the same ``w`` scales its
    growth's deviation: ``g = growth.mean + growth.sd·w·Z`` (the conjugate normal–inverse-χ²
    posterior: the growth's standard error is proportional to σ). With ``growth: {mean: g, sd: s/√n}``
    and ``volatility: {estimate: s, df: n−1}`` the H-year log change is then, to first order,
    ``H·ln(1+g) + s·sqrt(H + H²/n)·T_ν``: the Student-t predictive. ``ar1_growth`` (its
    ``long_run_growth``) and ``logit_share`` (its ``drift``) take an estimated volatility too.
    """

    growth: Growth
    volatility: float
    volatility_df: float = 0.0
    kind: Literal["lognormal"] = "lognormal"


def _pack_growth(growth: Growth, vol: float, i: int, a: dict[str, Any], df: float = 0.0) -> None:
    a["p_mean"][i], a["p_sd"][i], a["vol"][i], a["vol_df"][i] = growth.mean, growth.sd, vol, df
    a["additive"][i] = growth.log  # ln(1+g) is drawn directly (the plan adds the kind's own flag)


LOGNORMAL = ProcessSpec(
    kind="lognormal", cls=LognormalProcess, keys=("kind", "growth", "volatility"),
    parse=lambda r, spec, path, base_year: LognormalProcess(
        r.growth(r.required(spec, "growth", path), (*path, "growth"), rate=True),
        *r.estimated_volatility(spec, path)),
    shocked=True, observable=True, derived=False, whole_numbers=False,
    start_problem=_positive_start("lognormal"), observation_problem=_positive_observation("lognormal"),
    envelope=lambda p: (p.growth, p.volatility, 0.0, None, -math.inf, p.volatility_df),
    pack=lambda p, i, a, index, base_year: _pack_growth(p.growth, p.volatility, i, a, p.volatility_df),
    grid=_log_level_grid, infinite_mean_under_fat_tails=_fat_if_volatile,
    describe=lambda p: f"lognormal: growth {_g(p.growth)}, volatility {_vol(p)}",
    observed_level=lambda p, x: math.log(x), estimated_volatility=True,
)


# --------------------------------------------------------------------------- ar1_growth

@dataclass(frozen=True)
class Ar1GrowthProcess:
    """Log-growth ``r(t) = m + persistence·(r(t−1) − m) + volatility·ε(t)``, ``m = ln(1 + long_run_growth)``.

    ``r(base_year) = ln(1 + initial_growth)``; ``initial_growth`` None means: the last observed
    growth in the baselines (filled in when the scenario is loaded). An estimated volatility
    (``volatility_df`` > 0): as for :class:`LognormalProcess`, each path's ``σ = volatility·w`` and
    its ``long_run_growth = mean + sd·w·Z``.
    """

    long_run_growth: Growth
    persistence: float
    volatility: float
    initial_growth: float | None = None
    volatility_df: float = 0.0
    kind: Literal["ar1_growth"] = "ar1_growth"


def _parse_ar1(r: Any, spec: Mapping[str, Any], path: KeyPath, base_year: int) -> Ar1GrowthProcess:
    initial = spec.get("initial_growth")
    if initial is not None:
        initial = r.rate(initial, (*path, "initial_growth"))
    long_run_growth = r.growth(r.required(spec, "long_run_growth", path), (*path, "long_run_growth"), rate=True)
    persistence = r.number(r.required(spec, "persistence", path), (*path, "persistence"), low=-1.0,
                           low_open=True, high=0.999999, what="must lie in (-1, 1)")
    volatility, df = r.estimated_volatility(spec, path)
    return Ar1GrowthProcess(long_run_growth=long_run_growth, persistence=persistence, volatility=volatility,
                            initial_growth=initial, volatility_df=df)


def _pack_ar1(p: Ar1GrowthProcess, i: int, a: dict[str, Any], index: dict[str, int], base_year: int) -> None:
    _pack_growth(p.long_run_growth, p.volatility, i, a, p.volatility_df)
    a["phi"][i] = p.persistence
    a["r0"][i] = math.log1p(p.initial_growth)


AR1_GROWTH = ProcessSpec(
    kind="ar1_growth", cls=Ar1GrowthProcess,
    keys=("kind", "long_run_growth", "persistence", "volatility", "initial_growth"),
    parse=_parse_ar1, shocked=True, observable=True, derived=False, whole_numbers=False,
    start_problem=_positive_start("ar1_growth"), observation_problem=_positive_observation("ar1_growth"),
    envelope=lambda p: (p.long_run_growth, p.volatility, p.persistence,
                        math.log1p(p.initial_growth) if p.initial_growth is not None else None, -math.inf,
                        p.volatility_df),
    pack=_pack_ar1, grid=_log_level_grid, infinite_mean_under_fat_tails=_fat_if_volatile,
    describe=lambda p: (f"ar1_growth: long-run growth {_g(p.long_run_growth)}, persistence {p.persistence:g}, "
                        f"volatility {_vol(p)}, initial growth {p.initial_growth:g}"),
    observed_level=lambda p, x: math.log(x), estimated_volatility=True,
)


# --------------------------------------------------------------------------- logit_share

@dataclass(frozen=True)
class LogitShareProcess:
    """A share in (0, 1): ``logit s(t+1) = logit s(t) + drift + σ·ε(t)``. An estimated volatility
    (``volatility_df`` = ν > 0): as for :class:`LognormalProcess`, each path's ``σ = volatility·w``
    and ``drift = mean + sd·w·Z``. The logit is additive, so its H-year change is exactly
    ``H·drift.mean + sqrt(H·volatility² + H²·sd²)·T_ν`` (with normal shocks)."""

    drift: Growth
    volatility: float
    volatility_df: float = 0.0
    kind: Literal["logit_share"] = "logit_share"


def _logit_grid(p: Any, i: int, a: dict[str, Any], n_steps: int, fat: float, jump_span: np.ndarray,
                lo: np.ndarray, hi: np.ndarray) -> tuple[float, float]:
    """Shares live in (0, 1): from the lowest plausible logit up to 1 (further down for an estimated
    volatility: :func:`sketch_span_sd`)."""
    spread = math.sqrt(a["vol"][i] ** 2 * n_steps + a["p_sd"][i] ** 2 * n_steps**2) * fat
    if a["x0_spread"][i] > 0.0:  # an uncertain start: its spread on the logit scale
        spread = math.sqrt(spread**2 + a["x0_spread"][i] ** 2)
    span_sd = sketch_span_sd(a["vol_df"][i], a["sketch_tail"])
    start_logit = a["h0"][i]  # the logit in the base year (of the share of the ceiling, for a logistic)
    low_logit = min(start_logit, start_logit + a["p_mean"][i] * n_steps) - span_sd * spread - jump_span[i]
    return (-math.log1p(math.exp(-low_logit)) if low_logit > -700 else low_logit), 0.0


def _strict_fraction(what: str) -> Callable[[float], str | None]:
    return lambda v: (None if 0.0 < v < 1.0 else
                      f"{what} strictly between 0 and 1 (a fraction: 0.45 means 45 %), got {v:g}")


LOGIT_SHARE = ProcessSpec(
    kind="logit_share", cls=LogitShareProcess, keys=("kind", "drift", "volatility"),
    parse=lambda r, spec, path, base_year: LogitShareProcess(
        r.growth(r.required(spec, "drift", path), (*path, "drift"), rate=False),
        *r.estimated_volatility(spec, path)),
    shocked=True, observable=True, derived=False, whole_numbers=False,
    start_problem=_strict_fraction("a share starts"), observation_problem=_strict_fraction("an observed share lies"),
    envelope=_no_envelope,
    pack=lambda p, i, a, index, base_year: _pack_growth(p.drift, p.volatility, i, a, p.volatility_df),
    grid=_logit_grid, infinite_mean_under_fat_tails=lambda p: False,  # bounded: always a mean
    describe=lambda p: f"logit_share: drift {_g(p.drift)}, volatility {_vol(p)}",
    additive=True, hidden_start=lambda p, x0: math.log(x0 / (1.0 - x0)),
    observed_level=lambda p, x: math.log(x / (1.0 - x)), bounds=lambda p: (0.0, 1.0), estimated_volatility=True,
)


# --------------------------------------------------------------------------- buildout

@dataclass(frozen=True)
class BuildoutProcess:
    """``X(t) = organic(t) + Σ sizes of projects completed by t``; ``organic`` is log-normal from the start."""

    organic: LognormalProcess
    projects: tuple[Project, ...]
    kind: Literal["buildout"] = "buildout"


ORGANIC_KEYS = ("growth", "volatility")
PROJECT_KEYS = ("name", "size", "probability", "earliest", "latest")


def _parse_buildout(r: Any, spec: Mapping[str, Any], path: KeyPath, base_year: int) -> BuildoutProcess:
    opath = (*path, "organic")
    organic = r.mapping(r.required(spec, "organic", path), opath, ORGANIC_KEYS)
    organic_process = LognormalProcess(growth=r.growth(r.required(organic, "growth", opath), (*opath, "growth"),
                                                       rate=True),
                                       volatility=r.volatility(organic, opath,
                                                               owner="a buildout's organic part"))
    raw_projects = spec.get("projects") or []
    if not isinstance(raw_projects, list):
        raise r.fail((*path, "projects"), f"expected a list of projects, got {r.type_name(raw_projects)}")
    projects = []
    for k, item in enumerate(raw_projects):
        ppath = (*path, "projects", k)
        proj = r.mapping(item, ppath, PROJECT_KEYS)
        earliest = r.integer(r.required(proj, "earliest", ppath), (*ppath, "earliest"), low=base_year + 1, high=2200)
        latest = r.integer(proj.get("latest", earliest), (*ppath, "latest"), low=earliest, high=2200)
        projects.append(Project(
            name=r.string(proj.get("name", f"project {k + 1}"), (*ppath, "name")),
            size=r.number(r.required(proj, "size", ppath), (*ppath, "size"), low=0.0, low_open=True),
            probability=r.number(r.required(proj, "probability", ppath), (*ppath, "probability"), low=0.0, high=1.0),
            earliest=earliest, latest=latest))
    return BuildoutProcess(organic=organic_process, projects=tuple(projects))


def _pack_buildout(p: BuildoutProcess, i: int, a: dict[str, Any], index: dict[str, int], base_year: int) -> None:
    _pack_growth(p.organic.growth, p.organic.volatility, i, a)
    for pj in p.projects:
        a["proj_ind"].append(i)
        a["proj_size"].append(pj.size)
        a["proj_prob"].append(pj.probability)
        a["proj_first"].append(pj.earliest - base_year)
        a["proj_last"].append(pj.latest - base_year)


def _describe_buildout(p: BuildoutProcess) -> str:
    projects = "; ".join(f"{q.name}: {q.size:g} with p={q.probability:g} in {q.earliest}–{q.latest}"
                         for q in p.projects)
    return (f"buildout: organic growth {_g(p.organic.growth)}, volatility {p.organic.volatility:g}; "
            f"projects: {projects or 'none'}")


BUILDOUT = ProcessSpec(
    kind="buildout", cls=BuildoutProcess, keys=("kind", "organic", "projects"), parse=_parse_buildout,
    shocked=True, observable=False, derived=False, whole_numbers=False,
    start_problem=_positive_start("buildout"), observation_problem=_not_observable,
    envelope=lambda p: (p.organic.growth, p.organic.volatility, 0.0, None,
                        math.log(sum(q.size for q in p.projects)) + math.log(2.0) if p.projects else -math.inf,
                        0.0),
    pack=_pack_buildout, grid=_log_level_grid, infinite_mean_under_fat_tails=_fat_if_volatile,
    describe=_describe_buildout, hidden_start=lambda p, x0: math.log(x0) if x0 > 0 else -math.inf,
)


# --------------------------------------------------------------------------- count

@dataclass(frozen=True)
class CountProcess:
    """Integer stock ``S(t) = S(t−1) + A(t)``; ``A(t)`` Poisson or negative binomial.

    Negative binomial: variance ``mean + mean²/dispersion``.

    An uncertain mean (``additions: {mean: {mean, sd}}``, ``mean_sd`` > 0; what ``targetsim fit``
    writes: the mean's estimate and its standard error): each path draws its own yearly mean
    ``λ ~ Gamma(shape (mean/mean_sd)², scale mean_sd²/mean)`` once, and its additions are
    Poisson(λ) (or negative binomial with mean λ and the given dispersion) every year. Poisson
    additions over H years are then negative binomial with shape ``(mean/mean_sd)²`` and
    ``p = b/(b + H)``, ``b = mean/mean_sd²``. ``mean_sd`` 0: a known mean (the additions' law is the
    same every year on every path).
    """

    distribution: Literal["poisson", "negative_binomial"]
    mean: float
    dispersion: float | None = None
    mean_sd: float = 0.0
    kind: Literal["count"] = "count"


COUNT_DISTRIBUTIONS: tuple[str, ...] = ("poisson", "negative_binomial")
ADDITIONS_KEYS = ("distribution", "mean", "dispersion")
# The largest mean additions a year (and the largest s.d. of an uncertain one).
MAX_COUNT_MEAN = 1e9


def _parse_count(r: Any, spec: Mapping[str, Any], path: KeyPath, base_year: int) -> CountProcess:
    apath = (*path, "additions")
    add = r.mapping(r.required(spec, "additions", path), apath, ADDITIONS_KEYS)
    dist = r.choice(r.required(add, "distribution", apath), (*apath, "distribution"), COUNT_DISTRIBUTIONS,
                    "distribution")
    mean, mean_sd = r.uncertain_mean(r.required(add, "mean", apath), (*apath, "mean"), high=MAX_COUNT_MEAN,
                                     what="the mean additions a year")
    dispersion = None
    if dist == "negative_binomial":
        dispersion = r.number(r.required(add, "dispersion", apath), (*apath, "dispersion"), low=0.0, low_open=True)
    elif add.get("dispersion") is not None:
        raise r.fail((*apath, "dispersion"), "only a negative_binomial has a dispersion")
    return CountProcess(distribution=dist, mean=mean, dispersion=dispersion, mean_sd=mean_sd)


def count_mean_sd(p: CountProcess) -> float:
    """The s.d. of a count's per-path mean as the kernel draws it: ``mean_sd``, or 0 where the gamma law's
    shape ``(mean/mean_sd)²`` overflows a double (an s.d. below ~1e-154 of the mean: the point ``mean``)."""
    if not p.mean_sd > 0.0:
        return 0.0
    ratio = p.mean / p.mean_sd
    return p.mean_sd if math.isfinite(ratio * ratio) else 0.0


def _pack_count(p: CountProcess, i: int, a: dict[str, Any], index: dict[str, int], base_year: int) -> None:
    a["c_mean"][i] = p.mean
    a["c_disp"][i] = p.dispersion or 0.0
    a["c_sd"][i] = count_mean_sd(p)


def gamma_upper_bound(shape: float, tail: float) -> float:
    """A ``y`` with ``P(G > y·shape) ≤ tail`` for ``G ~ Gamma(shape, 1)`` (0 < tail < 1): the root above 1
    of Chernoff's bound ``P(G ≥ y·a) ≤ exp(−a·(y − 1 − ln y))``, by bisection (no SciPy at run time).
    It lies above the true quantile (a little for a large shape, where ``y ≈ 1 + sqrt(2 ln(1/tail)/a)``;
    a few times for a small one, whose upper tail is exponential with scale ``1/a`` of the mean)."""
    need = math.log(1.0 / tail) / shape

    def short(y: float) -> bool:  # the bound at y·a is still above tail
        return y - 1.0 - math.log(y) < need

    lo, hi = 1.0, 2.0
    while short(hi):
        lo, hi = hi, hi * 2.0
    while hi - lo > 1e-12 * hi:
        mid = 0.5 * (lo + hi)
        if short(mid):
            lo = mid
        else:
            hi = mid
    return hi


def whole_start_range(a: dict[str, Any], i: int) -> tuple[float, float]:
    """The lowest and highest start a count (or scheduled count) ``i`` can draw, as the plan packs its law
    (:func:`start_law`): ``x0`` twice for a known start; a uniform law's ends ``low..high``; a rounded
    log-normal's median ± SKETCH_SPAN_SD s.d. of ``ln X``, rounded."""
    law = a["x0_law"][i]
    if law == START_LAW_CODES["uniform"]:
        return float(a["x0_a"][i]), float(a["x0_b"][i])
    if law == START_LAW_CODES["lognormal"]:
        centre, sd = a["x0_a"][i], a["x0_b"][i]
        return (float(math.floor(math.exp(centre - SKETCH_SPAN_SD * sd) + 0.5)),
                float(math.floor(math.exp(min(centre + SKETCH_SPAN_SD * sd, 700.0)) + 0.5)))
    return a["x0"][i], a["x0"][i]


def _count_grid(p: Any, i: int, a: dict[str, Any], n_steps: int, fat: float, jump_span: np.ndarray,
                lo: np.ndarray, hi: np.ndarray) -> tuple[float, float]:
    """Around the plausible range; ln 0.5 as the floor: every positive count (at least 1) is on the grid.
    An uncertain mean: the additions' law at the largest plausible mean, the larger of ``mean +
    SKETCH_SPAN_SD·sd`` and a bound on the gamma law's quantile of ``a["sketch_tail"]`` (its upper tail
    is exponential: far beyond 10 s.d. when its shape is small). An uncertain start: from its highest
    plausible value (:func:`whole_start_range`)."""
    mean, disp, sd = a["c_mean"][i], a["c_disp"][i], a["c_sd"][i]
    if sd > 0.0:
        mean = max(mean + SKETCH_SPAN_SD * sd, mean * gamma_upper_bound((mean / sd) ** 2, a["sketch_tail"]))
    var = mean + (mean**2 / disp if disp > 0 else 0.0)
    top = whole_start_range(a, i)[1] + n_steps * mean + SKETCH_SPAN_SD * math.sqrt(n_steps * var) + 10
    return math.log(0.5), math.log(top)


def _describe_count(p: CountProcess) -> str:
    mean = f"{p.mean:g} ± {p.mean_sd:g} (per path, gamma)" if p.mean_sd > 0 else f"{p.mean:g}"
    return (f"count: additions {p.distribution} mean {mean}"
            + (f", dispersion {p.dispersion:g}" if p.dispersion else ""))


def _whole(what: str) -> Callable[[float], str | None]:
    return lambda v: None if v >= 0 and v == int(v) else f"{what} a whole number ≥ 0, got {v:g}"


COUNT = ProcessSpec(
    kind="count", cls=CountProcess, keys=("kind", "additions"), parse=_parse_count,
    shocked=False, observable=True, derived=False, whole_numbers=True,
    start_problem=_whole("a count starts at"), observation_problem=_whole("an observed count is"),
    envelope=_no_envelope, pack=_pack_count, grid=_count_grid, infinite_mean_under_fat_tails=lambda p: False,
    describe=_describe_count,
)


# --------------------------------------------------------------------------- scheduled

@dataclass(frozen=True)
class ScheduledProcess:
    """A count a government produces by decision (designations, platforms, funds, events): it follows a
    schedule, and each planned unit happens or slips.

    ``schedule``: ``(year, planned additions)`` pairs, years after the base year and up to the horizon,
    whole numbers ≥ 0 (a year not listed plans 0). The stock starts at its start (a whole number) and
    ``S(t) = S(t−1) + D(t)``: in each year ``t`` the ``N(t)`` = planned additions of ``t`` plus the units
    carried over from ``t−1`` are each delivered with probability ``delivery``, independently:
    ``D(t) ~ Binomial(N(t), delivery)``; of the ``N(t) − D(t)`` not delivered, each is carried to ``t+1``
    with probability ``carry_over``, else lost: ``C(t+1) ~ Binomial(N(t) − D(t), carry_over)``
    (``carry_over`` 0, the default: every slipped unit is lost). A unit may slip more than once (it is
    carried again with the same probability). No yearly shock of its own (correlations and jumps are
    refused), no mean-less tail; not observable (with carry-over the likelihood of an observed stock
    needs the hidden carried units: refused rather than approximated).

    Programme-level risk (``delivery: {mean, sd}``, ``delivery_sd`` > 0; likewise ``carry_over``): each
    path draws its own probability ``δ ~ Beta(m·κ, (1 − m)·κ)``, ``κ = m(1 − m)/sd² − 1`` (mean ``m``,
    s.d. ``sd``), once, and every unit of that path is delivered (carried) with probability ``δ``: a
    budget cut or a policy change hits every unit at once. Without carry-over the stock's additions over
    the horizon are then beta-binomial (mean ``N·m``, variance ``N·m(1 − m)·(1 + (N − 1)/(κ + 1))``, above
    the binomial's for ``N`` > 1). ``delivery_sd`` 0: a known probability, the same on every path.

    Planned from the start (``plan_to: {stock, margin, years}``, ``plan_to`` > 0, ``schedule`` empty):
    a city plans from the stock it has, which the model may know only as a range. Each path plans
    ``N = ⌈margin·max(stock − start, 0)⌉`` units from its own start, spread over ``plan_weights``
    (``(year, weight)``; the units planned by a year are ``⌊N·share + 1/2⌋``, ``share`` the weights'
    cumulative share): :meth:`planned_from`, the kernel's ``planned_to``.
    """

    schedule: tuple[tuple[int, int], ...]
    delivery: float
    carry_over: float = 0.0
    delivery_sd: float = 0.0
    carry_over_sd: float = 0.0
    plan_to: float = 0.0
    plan_margin: float = 1.0
    plan_weights: tuple[tuple[int, float], ...] = ()
    kind: Literal["scheduled"] = "scheduled"

    @property
    def total_planned(self) -> int:
        """The units the schedule plans (for ``plan_to``: from a start of 0, the most any path plans)."""
        if self.plan_to > 0.0:
            return sum(n for _, n in self.planned_from(0.0))
        return sum(n for _, n in self.schedule)

    def cumulative_shares(self) -> tuple[tuple[int, float], ...]:
        """``plan_to``: each year's cumulative share of the weights (the last is 1)."""
        total = sum(w for _, w in self.plan_weights)
        out, running = [], 0.0
        for year, weight in self.plan_weights:
            running += weight
            out.append((year, running / total))
        return tuple(out[:-1]) + ((out[-1][0], 1.0),) if out else ()

    def planned_from(self, start: float) -> tuple[tuple[int, int], ...]:
        """The ``(year, units)`` planned on a path that starts at ``start`` (the schedule itself, unless
        ``plan_to``)."""
        if not self.plan_to > 0.0:
            return self.schedule
        total = math.ceil(self.plan_margin * max(self.plan_to - start, 0.0) - 1e-9)
        out, before = [], 0
        for year, share in self.cumulative_shares():
            now = math.floor(total * share + 0.5)
            out.append((year, now - before))
            before = now
        return tuple(out)


SCHEDULED_KEYS = ("kind", "schedule", "plan_to", "delivery", "carry_over")
PLAN_TO_KEYS = ("stock", "margin", "years")
# The most units a schedule may plan in one year (each draw inverts a binomial in O(sqrt(n)) steps).
MAX_SCHEDULED = 10**6


def _parse_plan_to(r: Any, raw: Any, path: KeyPath, base_year: int, last: int) -> tuple[float, float, tuple]:
    """``plan_to: {stock, margin, years: {year: weight}}``: ``(stock, margin, ((year, weight), …))``."""
    m = r.mapping(raw, path, PLAN_TO_KEYS)
    stock = r.number(r.required(m, "stock", path), (*path, "stock"), low=0.0, high=float(MAX_SCHEDULED),
                     what="the stock the city plans to reach")
    if not stock > 0.0:
        raise r.fail((*path, "stock"), "plan_to's stock is the level the city plans to reach, above 0")
    margin = r.number(m.get("margin", 1.0), (*path, "margin"), low=1.0, high=10.0,
                      what="the margin planned above what the stock needs (1: exactly what it needs)")
    years = r.required(m, "years", path)
    if not isinstance(years, Mapping) or not years:
        raise r.fail((*path, "years"), f"expected a mapping year: weight (the share of the planned units in "
                                       f"that year), got {r.type_name(years)}")
    weights = []
    for year, weight in years.items():
        ypath = (*path, "years", str(year))
        if isinstance(year, bool) or not isinstance(year, int) or not base_year < year <= last:
            raise r.fail(ypath, f"a plan_to year is a year after the base year ({base_year}) and at most at the "
                                f"horizon ({last}), got {year!r}")
        weights.append((year, r.number(weight, ypath, low=0.0, high=1e6, what="the year's weight")))
    if not sum(w for _, w in weights) > 0.0:
        raise r.fail((*path, "years"), "plan_to's years need a positive weight in at least one year")
    return stock, margin, tuple(sorted(weights))


def _parse_scheduled(r: Any, spec: Mapping[str, Any], path: KeyPath, base_year: int) -> ScheduledProcess:
    horizon = getattr(r, "horizon", None)
    last = horizon if horizon is not None else 2200
    if "plan_to" in spec:
        if "schedule" in spec:
            raise r.fail((*path, "plan_to"), "give either schedule (the units planned each year) or plan_to (the "
                                             "units planned from each path's start), not both")
        stock, margin, weights = _parse_plan_to(r, spec["plan_to"], (*path, "plan_to"), base_year, last)
        delivery, delivery_sd, carry, carry_sd = _scheduled_probabilities(r, spec, path)
        return ScheduledProcess(schedule=(), delivery=delivery, carry_over=carry, delivery_sd=delivery_sd,
                                carry_over_sd=carry_sd, plan_to=stock, plan_margin=margin, plan_weights=weights)
    spath = (*path, "schedule")
    raw = r.required(spec, "schedule", path)
    if not isinstance(raw, Mapping) or not raw:
        raise r.fail(spath, f"expected a mapping year: planned additions, got {r.type_name(raw)}")
    schedule = []
    for year, planned in raw.items():
        ypath = (*spath, str(year))
        if isinstance(year, bool) or not isinstance(year, int):
            raise r.fail(ypath, f"a schedule's key is a year (a whole number), got {r.type_name(year)}")
        if not base_year < year <= last:
            raise r.fail(ypath, f"a schedule year must lie after the base year ({base_year}) and at most at the "
                                f"horizon ({last}), got {year}")
        n = r.number(planned, ypath, low=0.0, high=float(MAX_SCHEDULED), what="the planned additions that year")
        if n != int(n):
            raise r.fail(ypath, f"planned additions are a whole number ≥ 0 (units: designations, platforms, "
                                f"events), got {n:g}")
        schedule.append((year, int(n)))
    delivery, delivery_sd, carry, carry_sd = _scheduled_probabilities(r, spec, path)
    return ScheduledProcess(schedule=tuple(sorted(schedule)), delivery=delivery, carry_over=carry,
                            delivery_sd=delivery_sd, carry_over_sd=carry_sd)


def _scheduled_probabilities(r: Any, spec: Mapping[str, Any], path: KeyPath) -> tuple[float, float, float, float]:
    delivery, delivery_sd = _parse_probability(r, r.required(spec, "delivery", path), (*path, "delivery"),
                                               "the probability that each planned unit is delivered in its year")
    carry, carry_sd = _parse_probability(
        r, spec.get("carry_over", 0.0) if spec.get("carry_over") is not None else 0.0, (*path, "carry_over"),
        "the probability that an undelivered unit is delivered the next year instead; 0: lost")
    return delivery, delivery_sd, carry, carry_sd


PROBABILITY_KEYS = ("mean", "sd")


def _parse_probability(r: Any, raw: Any, path: KeyPath, what: str) -> tuple[float, float]:
    """``(mean, sd)`` of a scheduled count's probability: a number in [0, 1] (sd 0: the same on every path),
    or ``{mean, sd}``: each path draws its own from the Beta law with that mean and s.d. (programme-level
    risk), which needs ``0 < mean < 1`` and ``sd² < mean·(1 − mean)`` (the variance of a law on [0, 1]
    with that mean is below it; at it the law is a coin that is always 0 or 1). ``sd`` 0 (or left out):
    the number ``mean``."""
    if not isinstance(raw, Mapping):
        return r.number(raw, path, low=0.0, high=1.0, what=what), 0.0
    m = r.mapping(raw, path, PROBABILITY_KEYS)
    mean = r.number(r.required(m, "mean", path), (*path, "mean"), low=0.0, high=1.0, what=what)
    if not 0.0 < mean < 1.0:
        raise r.fail((*path, "mean"), f"a probability drawn per path from a Beta law needs a mean strictly between "
                                      f"0 and 1, got {mean:g} (a probability of exactly {mean:g} is certain: give "
                                      f"it as a number)")
    sd = r.number(m.get("sd", 0.0), (*path, "sd"), low=0.0, high=1.0,
                  what="the s.d. of the probability, drawn once per path from a Beta law")
    if sd * sd >= mean * (1.0 - mean):
        bound = math.sqrt(mean * (1.0 - mean))
        raise r.fail((*path, "sd"), f"the s.d. of a probability with mean {mean:g} must be below "
                                    f"sqrt(mean·(1 − mean)) = {bound:.4g} (no law on [0, 1] with that mean has a "
                                    f"larger one), got {sd:g}")
    return mean, sd


def beta_concentration(mean: float, sd: float) -> float:
    """``κ = m(1 − m)/sd² − 1`` of the Beta law with mean ``m`` and s.d. ``sd`` (shapes ``m·κ`` and
    ``(1 − m)·κ``), as the kernel draws it: 0 (a known probability) for ``sd`` 0 or where ``κ`` overflows
    a double (an s.d. below ~1e-154: the point ``mean``)."""
    if not sd > 0.0:
        return 0.0
    ratio = math.sqrt(mean * (1.0 - mean)) / sd  # sd² itself may underflow
    kappa = ratio * ratio - 1.0
    return kappa if math.isfinite(kappa) and kappa > 0.0 else 0.0


def _pack_scheduled(p: ScheduledProcess, i: int, a: dict[str, Any], index: dict[str, int], base_year: int) -> None:
    for year, n in p.schedule:
        a["s_plan"][i, year - base_year] = n
    if p.plan_to > 0.0:
        a["s_to_stock"][i], a["s_to_margin"][i] = p.plan_to, p.plan_margin
        shares = dict(p.cumulative_shares())
        running = 0.0
        for step in range(1, a["s_to_cum"].shape[1]):
            running = shares.get(base_year + step, running)
            a["s_to_cum"][i, step] = running
    a["s_delivery"][i], a["s_carry"][i] = p.delivery, p.carry_over
    a["s_delivery_kappa"][i] = beta_concentration(p.delivery, p.delivery_sd)
    a["s_carry_kappa"][i] = beta_concentration(p.carry_over, p.carry_over_sd)


def _scheduled_grid(p: Any, i: int, a: dict[str, Any], n_steps: int, fat: float, jump_span: np.ndarray,
                    lo: np.ndarray, hi: np.ndarray) -> tuple[float, float]:
    """From half a unit below the start (ln 0.5 for a start of 0: every positive stock is on the grid) to
    half a unit above the start plus every planned unit: the stock's every possible value (an uncertain
    start: from its lowest to its highest plausible value, :func:`whole_start_range`)."""
    low, high = whole_start_range(a, i)
    planned = sum(n for _, n in p.planned_from(low))  # plan_to: the lowest start plans the most
    return math.log(max(low, 1.0) - 0.5), math.log(high + planned + 0.5)


def _describe_scheduled(p: ScheduledProcess) -> str:
    plan = ", ".join(f"{n} in {year}" for year, n in p.schedule)
    if p.plan_to > 0.0:
        years = ", ".join(f"{year}: {w:g}" for year, w in p.plan_weights)
        plan = f"planned from each path's start to {p.plan_to:g} (margin {p.plan_margin:g}; weights {years})"

    def probability(mean: float, sd: float) -> str:
        drawn = beta_concentration(mean, sd) > 0.0  # as the kernel draws it
        return f"{mean:g} ± {sd:g} (per path, beta: programme-level risk)" if drawn else f"{mean:g}"

    return (f"scheduled: {plan}; delivery {probability(p.delivery, p.delivery_sd)}, "
            f"carry-over {probability(p.carry_over, p.carry_over_sd)}")


SCHEDULED = ProcessSpec(
    kind="scheduled", cls=ScheduledProcess, keys=SCHEDULED_KEYS, parse=_parse_scheduled,
    shocked=False, observable=False, derived=False, whole_numbers=True,
    start_problem=_whole("a scheduled count starts at"), observation_problem=_not_observable,
    envelope=_no_envelope, pack=_pack_scheduled, grid=_scheduled_grid, infinite_mean_under_fat_tails=lambda p: False,
    describe=_describe_scheduled,
)


# --------------------------------------------------------------------------- ratio and sum (derived)

@dataclass(frozen=True)
class RatioProcess:
    """Derived: ``numerator / denominator`` of two simulated indicators."""

    numerator: str
    denominator: str
    kind: Literal["ratio"] = "ratio"


@dataclass(frozen=True)
class SumProcess:
    """Derived: the sum of simulated indicators."""

    terms: tuple[str, ...]
    kind: Literal["sum"] = "sum"


def _parse_sum(r: Any, spec: Mapping[str, Any], path: KeyPath, base_year: int) -> SumProcess:
    terms = r.required(spec, "terms", path)
    if not isinstance(terms, list) or len(terms) < 2:
        raise r.fail((*path, "terms"), f"expected a list of at least two indicators, got {r.type_name(terms)}")
    names = tuple(r.string(t, (*path, "terms", k)) for k, t in enumerate(terms))
    if len(set(names)) != len(names):
        raise r.fail((*path, "terms"), "an indicator appears twice in the sum")
    return SumProcess(terms=names)


def _pack_ratio(p: RatioProcess, i: int, a: dict[str, Any], index: dict[str, int], base_year: int) -> None:
    a["ref_a"][i], a["ref_b"][i] = index[p.numerator], index[p.denominator]


def _pack_sum(p: SumProcess, i: int, a: dict[str, Any], index: dict[str, int], base_year: int) -> None:
    a["sum_start"][i], a["sum_len"][i] = len(a["sum_terms"]), len(p.terms)
    a["sum_terms"].extend(index[t] for t in p.terms)


def _ratio_grid(p: Any, i: int, a: dict[str, Any], n_steps: int, fat: float, jump_span: np.ndarray,
                lo: np.ndarray, hi: np.ndarray) -> tuple[float, float]:
    na, nb = a["ref_a"][i], a["ref_b"][i]
    return lo[na] - hi[nb], hi[na] - lo[nb]


def _sum_grid(p: Any, i: int, a: dict[str, Any], n_steps: int, fat: float, jump_span: np.ndarray,
              lo: np.ndarray, hi: np.ndarray) -> tuple[float, float]:
    terms = list(a["sum_terms"][a["sum_start"][i]:a["sum_start"][i] + a["sum_len"][i]])
    return min(lo[t] for t in terms), max(hi[t] for t in terms) + math.log(len(terms))


RATIO = ProcessSpec(
    kind="ratio", cls=RatioProcess, keys=("kind", "numerator", "denominator"),
    parse=lambda r, spec, path, base_year: RatioProcess(
        numerator=r.string(r.required(spec, "numerator", path), (*path, "numerator")),
        denominator=r.string(r.required(spec, "denominator", path), (*path, "denominator"))),
    shocked=False, observable=False, derived=True, whole_numbers=False,
    start_problem=_never, observation_problem=_not_observable, envelope=_no_envelope,
    pack=_pack_ratio, grid=_ratio_grid, infinite_mean_under_fat_tails=lambda p: False,
    describe=lambda p: f"derived: {p.numerator} / {p.denominator}",
)

SUM = ProcessSpec(
    kind="sum", cls=SumProcess, keys=("kind", "terms"), parse=_parse_sum,
    shocked=False, observable=False, derived=True, whole_numbers=False,
    start_problem=_never, observation_problem=_not_observable, envelope=_no_envelope,
    pack=_pack_sum, grid=_sum_grid, infinite_mean_under_fat_tails=lambda p: False,
    describe=lambda p: "derived: " + " + ".join(p.terms),
)


# --------------------------------------------------------------------------- logistic

@dataclass(frozen=True)
class LogisticProcess:
    """Saturation under a natural ceiling: ``X = ceiling / (1 + e^-h)``, ``h(t+1) = h(t) + drift +
    volatility·ε(t)``: a logit share of the ceiling (a penetration rate, a coverage, a capacity
    that cannot pass its plant). Growth is fastest half way and slows towards the ceiling."""

    ceiling: float
    drift: Growth
    volatility: float
    kind: Literal["logistic"] = "logistic"


def _parse_logistic(r: Any, spec: Mapping[str, Any], path: KeyPath, base_year: int) -> LogisticProcess:
    return LogisticProcess(
        ceiling=r.number(r.required(spec, "ceiling", path), (*path, "ceiling"), low=0.0, low_open=True,
                         what="the level the indicator approaches and never reaches, in its unit"),
        drift=r.growth(r.required(spec, "drift", path), (*path, "drift"), rate=False),
        volatility=r.volatility(spec, path, owner="a logistic"))


def _logistic_grid(p: Any, i: int, a: dict[str, Any], n_steps: int, fat: float, jump_span: np.ndarray,
                   lo: np.ndarray, hi: np.ndarray) -> tuple[float, float]:
    """A logit share's grid, moved up by ln(ceiling)."""
    low, high = _logit_grid(p, i, a, n_steps, fat, jump_span, lo, hi)
    return low + math.log(p.ceiling), high + math.log(p.ceiling)


LOGISTIC = ProcessSpec(
    kind="logistic", cls=LogisticProcess, keys=("kind", "ceiling", "drift", "volatility"), parse=_parse_logistic,
    shocked=True, observable=True, derived=False, whole_numbers=False,
    start_problem=lambda v: None if v > 0 else f"a logistic indicator starts above 0, got {v:g}",
    observation_problem=lambda v: None if v > 0 else f"an observed logistic value must be positive, got {v:g}",
    envelope=_no_envelope, pack=lambda p, i, a, index, base_year: _pack_growth(p.drift, p.volatility, i, a),
    grid=_logistic_grid, infinite_mean_under_fat_tails=lambda p: False,
    describe=lambda p: f"logistic: ceiling {p.ceiling:g}, drift {_g(p.drift)}, volatility {p.volatility:g}",
    additive=True, hidden_start=lambda p, x0: math.log(x0 / (p.ceiling - x0)),
    observed_level=lambda p, x: math.log(x / (p.ceiling - x)), scale=lambda p: p.ceiling,
    bounds=lambda p: (0.0, p.ceiling),
)


# --------------------------------------------------------------------------- the registry

#: Every process kind's spec, by kind, in the order the README lists them.
PROCESS_SPECS: dict[str, ProcessSpec] = {spec.kind: spec for spec in (
    LOGNORMAL, AR1_GROWTH, LOGIT_SHARE, LOGISTIC, BUILDOUT, COUNT, SCHEDULED, RATIO, SUM)}

Process = (LognormalProcess | Ar1GrowthProcess | LogitShareProcess | LogisticProcess | RatioProcess | SumProcess
           | BuildoutProcess | CountProcess | ScheduledProcess)

PROCESS_KINDS: tuple[str, ...] = tuple(PROCESS_SPECS)
# processes computed from other indicators: no start value, no shocks of their own
DERIVED_KINDS: tuple[str, ...] = tuple(k for k, s in PROCESS_SPECS.items() if s.derived)
# processes driven by the yearly shocks ε (and so open to correlations, jumps and observations)
SHOCKED_KINDS: tuple[str, ...] = tuple(k for k, s in PROCESS_SPECS.items() if s.shocked)
# processes whose values can be observed
OBSERVABLE_KINDS: tuple[str, ...] = tuple(k for k, s in PROCESS_SPECS.items() if s.observable)
# processes whose volatility may be estimated: `volatility: {estimate, df}`
ESTIMATED_VOLATILITY_KINDS: tuple[str, ...] = tuple(k for k, s in PROCESS_SPECS.items() if s.estimated_volatility)


# Kinds whose start may be uncertain (``start: {low, high}`` or ``{mean, sd}``, drawn once per path).
UNCERTAIN_START_KINDS: tuple[str, ...] = ("lognormal", "ar1_growth", "logit_share", "logistic", "buildout", "count",
                                          "scheduled")
# Of these, the kinds whose start is a whole number: a range only (``{low, high}``), drawn as a whole number
# (``uniform``: uniform on the integers low..high; ``lognormal``: the continuous law rounded to the nearest).
WHOLE_START_KINDS: tuple[str, ...] = tuple(k for k in UNCERTAIN_START_KINDS if PROCESS_SPECS[k].whole_numbers)


def start_scale(process: Any) -> tuple[Callable[[float], float], Callable[[float], float]]:
    """The natural scale of a kind's start and its inverse: ``ln x`` for a level; for a bounded kind (a
    share, a logistic under its ceiling ``c``) the logit of its share ``ln(x / (c − x))``. A range's
    default law is normal on this scale (log-normal, logit-normal)."""
    bounds = PROCESS_SPECS[process.kind].bounds(process)
    if bounds is None:
        return math.log, math.exp
    top = bounds[1]
    return (lambda x: math.log(x / (top - x))), (lambda h: top / (1.0 + math.exp(-h)))


def whole_start_pmf(process: Any, start: Any) -> tuple[np.ndarray, np.ndarray]:
    """A count's (or scheduled count's) start law as the kernel draws it (:func:`start_law`), as
    ``(values, probabilities)`` on the whole numbers: a known start, one value; ``uniform``, ``low..high``
    equally likely; ``lognormal``, ``X = ⌊e^h + 1/2⌋`` with ``h`` normal, over ``h``'s ±8 s.d."""
    code, a, b, _ = start_law(process, start)
    if code == 0:
        return np.array([float(start.value)]), np.array([1.0])
    if code == START_LAW_CODES["uniform"]:
        values = np.arange(a, b + 1.0)
        return values, np.full(len(values), 1.0 / len(values))
    if code != START_LAW_CODES["lognormal"] or process.kind not in WHOLE_START_KINDS:
        raise ValueError(f"whole_start_pmf reads a count's known, uniform or log-normal start, not {start!r}")
    from scipy import stats

    values = np.arange(math.floor(math.exp(a - 8.0 * b)), math.floor(math.exp(a + 8.0 * b) + 0.5) + 1.0)
    edges = np.log(np.concatenate([np.maximum(values - 0.5, 1e-300), [values[-1] + 0.5]]))
    edges[0] = -np.inf if values[0] == 0 else edges[0]
    probs = np.diff(stats.norm.cdf((edges - a) / b))
    return values, probs / probs.sum()


def start_law(process: Any, start: Any) -> tuple[int, float, float, float]:
    """A start's law as the kernel draws it: ``(code, a, b, spread)``; ``lognormal``: ``a``, ``b`` the
    mean and s.d. of the natural scale (:func:`start_scale`), normal with 5 % and 95 % quantiles at
    ``low``'s and ``high``'s; ``uniform``: ``low``, ``high``; ``normal``: the mean and s.d. of X;
    ``known``: 0, 0. ``spread``: a s.d. on the natural scale whose SKETCH_SPAN_SD multiples cover every
    value the law can draw around its median (0 for a known start; for a sketch's grid). A count's (or
    scheduled count's) start (:data:`WHOLE_START_KINDS`): ``lognormal``, the mean and s.d. of ``ln X``
    (the kernel rounds ``X`` to the nearest whole number); ``uniform``, ``low`` and ``high`` (whole
    numbers: the kernel draws uniformly on low..high); spread 0 (its grid reads the law:
    :func:`whole_start_range`)."""
    law = getattr(start, "law", "known")
    if start is None or law == "known":
        return 0, 0.0, 0.0, 0.0
    if process.kind in WHOLE_START_KINDS:  # a count's whole-number start: its grid reads the law itself
        if law == "lognormal":
            lo, hi = math.log(start.low), math.log(start.high)
            return START_LAW_CODES[law], 0.5 * (lo + hi), (hi - lo) / (2.0 * 1.6448536269514722), 0.0
        return START_LAW_CODES[law], start.low, start.high, 0.0
    fwd, _ = start_scale(process)
    centre = fwd(start.value)
    if law == "lognormal":
        lo, hi = fwd(start.low), fwd(start.high)
        sd = (hi - lo) / (2.0 * 1.6448536269514722)
        return START_LAW_CODES[law], 0.5 * (lo + hi), sd, sd
    if law == "uniform":
        reach = max(abs(fwd(start.low) - centre), abs(fwd(start.high) - centre))
        return START_LAW_CODES[law], start.low, start.high, reach / SKETCH_SPAN_SD
    lo, hi = start.value - START_NORMAL_SD * start.sd, start.value + START_NORMAL_SD * start.sd
    reach = max(abs(fwd(lo) - centre), abs(fwd(hi) - centre))
    return START_LAW_CODES[law], start.value, start.sd, reach / SKETCH_SPAN_SD


def start_log_range(start: Any, n_sd: float) -> tuple[float, float]:
    """The lowest and highest plausible ``ln X`` of a level's start: ``ln value`` for a known one; a
    log-normal's median ± ``n_sd`` s.d. of ``ln X``; a uniform's ends; a normal's ±START_NORMAL_SD s.d."""
    law = getattr(start, "law", "known")
    if law == "lognormal":
        lo, hi = math.log(start.low), math.log(start.high)
        mid, sd = 0.5 * (lo + hi), (hi - lo) / (2.0 * 1.6448536269514722)
        return mid - n_sd * sd, mid + n_sd * sd
    if law == "uniform":
        return math.log(start.low), math.log(start.high)
    if law == "normal":
        return (math.log(start.value - START_NORMAL_SD * start.sd),
                math.log(start.value + START_NORMAL_SD * start.sd))
    value = math.log(start.value)
    return value, value


def check_specs(specs: Mapping[str, ProcessSpec] = PROCESS_SPECS) -> None:
    """Refuse, loudly, a spec with a part missing or inconsistent (run at import)."""
    for kind, spec in specs.items():
        missing = [f.name for f in fields(ProcessSpec) if getattr(spec, f.name, None) is None]
        if missing:
            raise TypeError(f"process kind {kind!r}: its spec lacks {', '.join(missing)}")
        if spec.kind != kind or spec.cls.__dataclass_fields__["kind"].default != kind:
            raise TypeError(f"process kind {kind!r}: the spec and its class name another kind")
        if "kind" not in spec.keys:
            raise TypeError(f"process kind {kind!r}: its keys must include 'kind'")
        if spec.derived and (spec.shocked or spec.observable):
            raise TypeError(f"process kind {kind!r}: a derived kind has no shock of its own and is not observed")
        if spec.estimated_volatility and not (spec.shocked and "volatility" in spec.keys
                                              and "volatility_df" in spec.cls.__dataclass_fields__):
            raise TypeError(f"process kind {kind!r}: an estimated volatility needs a shocked kind with a "
                            "'volatility' key and a volatility_df field")


check_specs()
