"""The outside view: how comparable past plan targets turned out, as a prior for a target's indicator.

About half the shipped targets have no series of their own and use a "plan-pace" prior (the indicator
grows, on average, exactly at the pace the target needs, so P(met) is one half by construction). The
outside view replaces that pace by what past targets of the same kind actually did relative to theirs.

**The reference class** is ``baselines/reference_targets*.csv`` (national, subnational, sectoral
slices, and ``reference_targets.csv`` if present): one past target a row, with its base, target and
realised values, its kind (``level``, ``count``, ``cumulative``, ``growth``, ``share``), its type
(``binding`` 约束性 / ``expected`` 预期性 / ``unknown``, read as expected), its plan and the plan's level
(``national``, ``sectoral``, ``city``, ``provincial``; the last two pooled as ``subnational``). Rows
with ``met`` empty do not count.

**The margin** ``m`` puts every outcome on one scale: how much faster (per year) the indicator moved
than the target needed, in the direction the target asks (``<=`` targets flip the sign). With ``h``
the horizon in years:

- level, count, cumulative total: ``m = ln(R/T) / h`` (= realised ``ln(R/b)/h`` minus required
  ``ln(T/b)/h``; the base cancels, so the margin needs none, but the required growth does);
- growth-rate target (kind ``growth``, a yearly rate in percent): ``m = ln(1+R) − ln(1+T)``; a rate
  of *reduction* (降低, 下降, 减少, "cut", "reduction" in the indicator) counts as the indicator's
  log fall, ``m = −ln(1−R) + ln(1−T)``; a cumulative reduction over the horizon (``percent_cumulative``)
  the same, divided by ``h``;
- share (percent) strictly inside (0, 100): ``m = (logit R − logit T) / h`` (a base, where given, only
  sets the required change); a share at 0 or 100 %, or a gain in percentage points without a base,
  has no logit: ``m = 4·(R − T)/100 / h``, the points difference at the logit's slope at one half
  (its smallest; this understates the margin near 0 or 100 %). A gain in points with a base ``b``
  is the share ``b + R`` against ``b + T``; a gain in years (life expectancy) with a base is the level
  ``b + R`` against ``b + T``.

The horizon is ``target_year − base_year``; without a base year it is read from the plan's name (a
"(2016-2020年)" span, 十一五 … 十四五, "five-year term", an annual "2019年…" report: one year).
The realised value is the recorded one even when it is for an earlier year than the target year (an
early hit: the margin is then conservative). Rows with no computable margin (no realised value,
values of different units, non-positive values) enter only the logistic model of ``met``.

**The model** (statsmodels): ``m = x'β + ε`` with covariates an intercept, kind (growth is the
reference; ``cumulative`` pooled with ``level``), binding, plan level (subnational the reference),
``ln h``, and, where any row has a trend growth, ``required − trend`` (0 where missing) with a
missing-trend indicator. The margins of different kinds live on different scales and shrink with the
horizon, so the residual variance is modelled too: ``ln σ_i² = γ_family + δ·ln h`` (family: growth,
share, level-like; ``horizon_slope="family"`` gives each family its own ``δ``), fitted by OLS on ``ln e²`` of the current fit's residuals (feasible GLS: OLS
first, three rounds), then WLS with weights ``1/σ_i²``. Reported: the coefficients with their
classical and heteroskedasticity-robust (HC1) standard errors. The predictive law of a new margin is Student-t with ``n − p`` degrees of freedom,
centre ``x'β̂`` and scale ``sqrt(s²·v(x) + x' Ĉov(β̂) x)`` (``v(x)`` the modelled relative variance,
``s²`` the WLS scale, ``Ĉov(β̂) = s²(X'WX)⁻¹``): with ``variance_model=False`` it is the textbook OLS
predictive ``s²(1 + x'(X'X)⁻¹x)``. ``P(met) = P(m ≥ 0 | x)``.

A scheduled count (:func:`outside_view_delivery`) takes the logistic model's P(met) itself: its delivery
law's mean is the one that meets its target with that P, computed exactly (:func:`scheduled_met_given_delivery`).

:func:`outside_view_growth` turns it into a lognormal process's ``growth: {log_mean, log_sd}``: the
indicator's average log growth is ``required + m``, so ``log_mean = required + x'β̂`` and ``log_sd``
the predictive scale. That spread is the whole spread of the realised average growth over the horizon
(year-to-year noise included): a process that adds its own volatility on top counts that part twice.

**How well it does** (``python -m benches.outside_view``: leave-one-plan-out, 323 targets in 87
plans, 80 % met): every margin-based P(met) is about as good as the base rate, no better (Brier
≈ 0.17–0.18 against 0.164), and far better than the plan-pace prior's 0.25; a logistic model of
``met`` on the same covariates (:func:`fit_met_logit`) is the only one that beats the base rate
(≈ 0.153). The margin model's P(met) is too low on average (≈ 0.63): outcomes bunch at the target
(about 9 % are reported exactly on it), ``~`` (about) targets count as met a little below it, and
the margins are skewed with heavy tails (a few large shortfalls, e.g. tourism in 2020), which a
location-scale law does not capture. ``exact_hits`` and ``residual="t"``/``"empirical"`` narrow the
gap without closing it.

statsmodels and scipy are imported lazily, inside the functions.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from targetsim.errors import FitError

__all__ = ["REFERENCE_FILES", "ReferenceRow", "load_reference", "margin_of", "MarginFit", "fit_margin_model",
           "MetLogit", "fit_met_logit", "outside_view_growth", "default_fit", "KINDS", "BINDINGS", "PLAN_LEVELS",
           "inconsistencies", "leave_one_plan_out", "default_logit", "CENTRES", "family_of", "plan_group", "EXACT_HIT",
           "outside_view_margin", "growth_mean_prior_sd", "CountAdditions", "outside_view_count_additions",
           "combine_normal", "SeriesTrend", "series_trends", "combined_forecasts", "SCHEDULED_MEASURES", "DELIVERY_SD",
           "ScheduledDelivery", "scheduled_met_given_delivery", "scheduled_p_met", "outside_view_delivery",
           "START_NODES", "start_nodes", "scheduled_met_planned_from_start"]

REFERENCE_FILES = ("reference_targets.csv", "reference_targets_national.csv", "reference_targets_subnational.csv",
                   "reference_targets_sectoral.csv")
BASELINES = Path(__file__).resolve().parent.parent.parent / "baselines"

KINDS = ("growth", "level", "count", "share", "cumulative")
BINDINGS = ("expected", "binding", "unknown")
PLAN_LEVELS = ("city", "provincial", "national", "sectoral")
_REDUCTION = re.compile(r"降|减|reduction|\bcut\b|decline|decrease", re.IGNORECASE)
_PERCENT_UNITS = ("percent", "percent_per_year", "percent_cumulative", "percentage_points", "percent_of_remaining")
FGLS_ROUNDS = 3  # feasible GLS: the first round's residuals are OLS's
EXACT_HIT = 1e-9  # |margin| at or below this: the outcome is reported as exactly the target
RIDGE = 0.01  # the logistic model's L2 penalty (per observation) when the plain fit separates
LOGIT_SLOPE = 4.0  # d logit(p) / dp at p = 1/2: points difference → logit scale without a level


# ------------------------------------------------------------------------------------------------ rows

@dataclass(frozen=True)
class ReferenceRow:
    """One past target of the reference class, with its margin (``None`` where it cannot be computed)."""

    id: str
    plan: str
    plan_level: str
    kind: str
    binding: str
    unit: str
    indicator: str
    comparator: str
    base_year: int | None
    base_value: float | None
    trend_growth: float | None
    target_value: float | None
    target_year: int | None
    realised_value: float | None
    realised_year: int | None
    met: int | None
    horizon: int
    horizon_source: str
    required: float | None      # the yearly change the target needs, on the margin's scale (None: unknown)
    margin: float | None
    scale: str                  # "log growth", "log level", "logit share", "points×4 share", "" (no margin)
    note: str
    source: str                 # file:line
    restates: str = ""          # the id of the row whose target this one restates (another plan, same outcome)

    @property
    def family(self) -> str:
        """The residual-variance family: growth, share or level (level, count, cumulative)."""
        return family_of(self.kind)


def family_of(kind: str) -> str:
    return "growth" if kind == "growth" else "share" if kind == "share" else "level"


def _float(text: str | None) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _int(text: str | None) -> int | None:
    value = _float(text)
    return int(value) if value is not None and value == int(value) else None


def horizon_of(base_year: int | None, target_year: int | None, plan: str) -> tuple[int, str]:
    """``(h, how it was found)``: ``target_year − base_year``, else read from the plan's name, else 1."""
    if base_year is not None and target_year is not None and target_year > base_year:
        return target_year - base_year, "base_year"
    if target_year is None:
        return 1, "assumed 1 (no target year)"
    span = re.search(r"(\d{4})\s*[-–—~至到]\s*(\d{4})", plan)
    if span:
        start = int(span.group(1))
        if start <= target_year:
            return max(target_year - start + 1, 1), "plan span"
    for name, base in (("十一五", 2005), ("第十一个五年", 2005), ("十二五", 2010), ("第十二个五年", 2010),
                       ("十三五", 2015), ("第十三个五年", 2015), ("十四五", 2020), ("第十四个五年", 2020),
                       ("十五五", 2025), ("第十五个五年", 2025)):
        if name in plan and target_year > base:
            return target_year - base, "five-year plan"
    if re.search(r"five-year|五年", plan):
        return 5, "five-year term"
    year = re.match(r"\s*(\d{4})\s*年", plan)
    if year and int(year.group(1)) <= target_year:
        return target_year - int(year.group(1)) + 1, "annual plan"
    return 1, "assumed 1"


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def margin_of(*, kind: str, unit: str, indicator: str, comparator: str, target: float | None,
              realised: float | None, base: float | None, horizon: int) -> tuple[float | None, float | None, str, str]:
    """``(margin, required, scale, note)`` of one target (see the module docstring for the formulas).

    ``margin`` is the realised minus the required yearly change, signed so that positive is on the side
    the target asks for; ``required`` the yearly change the target needs on the same scale and with
    the same sign (so ``required + margin`` is the realised change; ``None`` where it needs a base
    that is missing). Values are as written in the table (percent, not fractions).
    """
    sign = -1.0 if comparator.strip().startswith("<") else 1.0
    h = float(horizon)
    unit = unit.strip()
    reduction = bool(_REDUCTION.search(indicator))
    if target is None:
        return None, None, "", "no target value"
    if ";" in unit or "(" in unit:
        return None, None, "", f"unit {unit!r}: target and outcome in different units"

    def change(x: float) -> float | None:  # a rate in percent → the indicator's log change, favourable side up
        if reduction:
            return -math.log1p(-x / 100.0) if x < 100.0 else None
        return math.log1p(x / 100.0) if x > -100.0 else None

    required: float | None = None
    if kind == "growth" or (kind == "cumulative" and unit == "percent_cumulative"):
        if unit not in _PERCENT_UNITS:
            return None, None, "", f"growth target in unit {unit!r}"
        per = 1.0 if kind == "growth" else h
        t = change(target)
        required = None if t is None else sign * t / per
        if realised is None:
            return None, required, "", "no realised value"
        r = change(realised)
        if t is None or r is None:
            return None, required, "", "a rate of 100 % or more"
        return sign * (r - t) / per, required, "log growth", ("reduction rate" if reduction else "")
    if kind == "share" or (kind == "cumulative" and unit == "percentage_points"):
        gain = kind == "cumulative"
        if gain and base is None:
            if realised is None:
                return None, None, "", "no realised value"
            return (sign * LOGIT_SLOPE * (realised - target) / 100.0 / h, None, "points×4 share",
                    "gain in points without a base: points difference × 4")
        if gain:
            base_share, t_share = base, base + target
            r_share = None if realised is None else base + realised
        else:
            base_share, t_share, r_share = base, target, realised
        inside = lambda v: v is not None and 0.0 < v < 100.0  # noqa: E731
        if unit not in _PERCENT_UNITS:
            # a share in another unit (a ratio): read as a level
            if realised is None or realised <= 0 or target <= 0:
                return None, None, "", "no realised value" if realised is None else "non-positive value"
            return sign * math.log(realised / target) / h, None, "log level", "share in a non-percent unit"
        if inside(base_share) and inside(t_share):
            required = sign * (_logit(t_share / 100.0) - _logit(base_share / 100.0)) / h
        if r_share is None:
            return None, required, "", "no realised value"
        if inside(t_share) and inside(r_share):
            return sign * (_logit(r_share / 100.0) - _logit(t_share / 100.0)) / h, required, "logit share", ""
        return (sign * LOGIT_SLOPE * (r_share - t_share) / 100.0 / h, required, "points×4 share",
                "share at 0 or 100 %: points difference × 4")
    # level, count, cumulative totals and gains in years
    if kind == "cumulative" and unit == "years":
        if base is None:
            return None, None, "", "gain in years without a base"
        t_level, r_level, b_level = base + target, None if realised is None else base + realised, base
    else:
        t_level, r_level, b_level = target, realised, base
    if t_level <= 0:
        return None, None, "", "non-positive target"
    if b_level is not None and b_level > 0:
        required = sign * math.log(t_level / b_level) / h
    if r_level is None:
        return None, required, "", "no realised value"
    if r_level <= 0:
        return None, required, "", "non-positive realised value"
    return sign * math.log(r_level / t_level) / h, required, "log level", ""


def _row(raw: dict[str, str], source: str) -> ReferenceRow:
    kind = (raw.get("kind") or "").strip()
    base_year, target_year = _int(raw.get("base_year")), _int(raw.get("target_year"))
    plan = (raw.get("plan") or "").strip()
    h, how = horizon_of(base_year, target_year, plan)
    met_text = (raw.get("met") or "").strip()
    met = int(float(met_text)) if met_text in ("0", "1", "0.0", "1.0") else None
    base, target = _float(raw.get("base_value")), _float(raw.get("target_value"))
    realised = _float(raw.get("realised_value"))
    m, required, scale, note = margin_of(kind=kind, unit=raw.get("unit") or "", indicator=raw.get("indicator") or "",
                                         comparator=raw.get("comparator") or ">=", target=target, realised=realised,
                                         base=base, horizon=h)
    binding = (raw.get("binding") or "").strip() or "unknown"
    return ReferenceRow(
        id=(raw.get("id") or "").strip(), plan=plan, plan_level=(raw.get("plan_level") or "").strip(), kind=kind,
        binding=binding, unit=(raw.get("unit") or "").strip(), indicator=(raw.get("indicator") or "").strip(),
        comparator=(raw.get("comparator") or "").strip(), base_year=base_year, base_value=base,
        trend_growth=_float(raw.get("trend_growth")), target_value=target, target_year=target_year,
        realised_value=realised, realised_year=_int(raw.get("realised_year")), met=met, horizon=h,
        horizon_source=how, required=required, margin=m, scale=scale, note=note, source=source,
        restates=(raw.get("restates") or "").strip())


def load_reference(paths: Iterable[str | Path] | None = None, *, directory: str | Path | None = None,
                   include_undetermined: bool = False, include_restated: bool = False) -> list[ReferenceRow]:
    """The reference rows of every file in ``paths`` (default: :data:`REFERENCE_FILES` that exist in
    ``directory``, default ``baselines/``). Rows with ``met`` empty are left out unless
    ``include_undetermined``; so are rows whose kind is not one of :data:`KINDS`, and rows that restate
    another row's target (``restates``: the same target in another plan, one outcome; counting it twice
    would weigh that outcome twice and, leaving one plan out, keep its twin in the fit) unless
    ``include_restated``."""
    if paths is None:
        folder = Path(directory) if directory is not None else BASELINES
        paths = [folder / name for name in REFERENCE_FILES if (folder / name).exists()]
    rows = []
    for path in paths:
        path = Path(path)
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            for raw in reader:
                row = _row(raw, f"{path.name}:{reader.line_num}")
                if row.kind not in KINDS:
                    continue
                if row.met is None and not include_undetermined:
                    continue
                if row.restates and not include_restated:
                    continue
                rows.append(row)
    if not rows:
        raise FitError("the outside view has no reference rows: baselines/reference_targets*.csv are missing or empty")
    return rows


def inconsistencies(rows: Sequence[ReferenceRow]) -> list[str]:
    """Rows whose ``met`` disagrees with the sign of their margin under a comparator read by the letter
    (``>=``, ``<=``: met at the target; ``>``, ``<``: met only beyond it, 超过/低于): a transcription
    error or a rule the table does not state. ``~`` (about) targets are skipped: they count as met within
    a tolerance below the target."""
    out = []
    for row in rows:
        if row.margin is None or row.met is None or row.comparator not in (">=", "<=", ">", "<"):
            continue
        met = row.margin >= -1e-12 if row.comparator in (">=", "<=") else row.margin > 1e-12
        if met != bool(row.met):
            out.append(f"{row.id} ({row.source}): met={row.met} but target {row.target_value:g} {row.comparator} "
                       f"realised {row.realised_value:g} gives margin {row.margin:+.4f}")
    return out


# ------------------------------------------------------------------------------------------------ design

def plan_group(plan_level: str) -> str:
    """``city`` and ``provincial`` pool as ``subnational`` (the reference level)."""
    return "subnational" if plan_level in ("city", "provincial", "subnational", "") else plan_level


def _validate(kind: str, binding: str, plan_level: str, horizon: float) -> None:
    if kind not in KINDS:
        raise FitError(f"outside view: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if binding not in BINDINGS:
        raise FitError(f"outside view: binding must be one of {', '.join(BINDINGS)}, not {binding!r}")
    if plan_group(plan_level) not in ("subnational", "national", "sectoral"):
        raise FitError(f"outside view: plan_level must be one of {', '.join(PLAN_LEVELS)}, not {plan_level!r}")
    if not (isinstance(horizon, (int, float)) and math.isfinite(horizon) and horizon >= 1):
        raise FitError(f"outside view: the horizon must be at least 1 year, not {horizon!r}")


ALL_COLUMNS = ("const", "kind[level]", "kind[count]", "kind[share]", "binding", "plan[national]", "plan[sectoral]",
               "ln_horizon", "required_minus_trend", "trend_missing")


def _covariates(kind: str, binding: str, plan_level: str, horizon: float, required: float | None,
                trend: float | None) -> dict[str, float]:
    k = "level" if kind == "cumulative" else kind
    p = plan_group(plan_level)
    gap = (required - trend) if (required is not None and trend is not None) else 0.0
    return {"const": 1.0, "kind[level]": float(k == "level"), "kind[count]": float(k == "count"),
            "kind[share]": float(k == "share"), "binding": float(binding == "binding"),
            "plan[national]": float(p == "national"), "plan[sectoral]": float(p == "sectoral"),
            "ln_horizon": math.log(horizon), "required_minus_trend": gap,
            "trend_missing": float(required is None or trend is None)}


def _row_covariates(row: ReferenceRow) -> dict[str, float]:
    return _covariates(row.kind, row.binding, row.plan_level, row.horizon, row.required, row.trend_growth)


def _columns(rows: Sequence[ReferenceRow]) -> tuple[str, ...]:
    """The columns that vary in ``rows`` (a constant column besides the intercept is dropped)."""
    table = np.array([[_row_covariates(r)[c] for c in ALL_COLUMNS] for r in rows])
    keep = [c for j, c in enumerate(ALL_COLUMNS) if c == "const" or np.ptp(table[:, j]) > 0]
    if "trend_missing" in keep and "required_minus_trend" not in keep:
        keep.remove("trend_missing")
    return tuple(keep)


def _families(rows: Sequence[ReferenceRow]) -> tuple[str, ...]:
    return tuple(f for f in ("growth", "level", "share") if any(r.family == f for r in rows))


# ------------------------------------------------------------------------------------------------ margin model

@dataclass(frozen=True, eq=False)
class MarginFit:
    """A fitted margin model (see the module docstring); :meth:`predict` gives the predictive law."""

    columns: tuple[str, ...]
    beta: np.ndarray
    cov: np.ndarray              # classical Ĉov(β̂) = s²(X'WX)⁻¹
    cov_hc1: np.ndarray          # heteroskedasticity-robust (HC1)
    scale: float                 # s² (WLS scale)
    df: float                    # n − p
    n: int
    families: tuple[str, ...]
    gamma: dict[str, float]      # ln relative variance per family (0 for the first)
    delta: dict[str, float]      # … and per unit of ln h, per family (0 where a family has one horizon)
    variance_model: bool
    exact_hit: dict[str, float] = field(default_factory=dict)  # P(m = 0 exactly) per family (empty: none)
    residual: str = "normal"     # "normal", "t" or "empirical" (see fit_margin_model)
    residuals: np.ndarray = field(default_factory=lambda: np.zeros(0))  # standardised, for "empirical"
    plans: tuple[str, ...] = field(default=())

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))

    @property
    def se_hc1(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov_hc1))

    def relative_variance(self, kind: str, horizon: float) -> float:
        if not self.variance_model:
            return 1.0
        fam = family_of(kind)
        if fam not in self.gamma:
            raise FitError(f"outside view: no reference margins of the {fam} family to set the spread of a "
                           f"{kind} target")
        return math.exp(self.gamma[fam] + self.delta.get(fam, 0.0) * math.log(horizon))

    def vector(self, kind: str, binding: str, plan_level: str, horizon: float, *, required: float | None = None,
               trend_growth: float | None = None) -> np.ndarray:
        _validate(kind, binding, plan_level, horizon)
        cov = _covariates(kind, binding, plan_level, horizon, required, trend_growth)
        return np.array([cov[c] for c in self.columns])

    def predict(self, kind: str, binding: str, plan_level: str, horizon: float, *, required: float | None = None,
                trend_growth: float | None = None) -> tuple[float, float, float]:
        """``(centre, scale, df)`` of the Student-t predictive law of a new target's margin."""
        x = self.vector(kind, binding, plan_level, horizon, required=required, trend_growth=trend_growth)
        mean = float(x @ self.beta)
        var = self.scale * self.relative_variance(kind, horizon) + float(x @ self.cov @ x)
        return mean, math.sqrt(var), self.df

    def p_met(self, kind: str, binding: str, plan_level: str, horizon: float, **kw: Any) -> float:
        """``P(m ≥ 0) = π₀ + (1 − π₀)·P(m > 0 | m ≠ 0)``: the exact hits' share of the family and the
        predictive law of the margins off zero."""
        from scipy import stats

        mean, sd, df = self.predict(kind, binding, plan_level, horizon, **kw)
        if self.residual == "empirical":
            above = float(np.mean(mean + sd * self.residuals >= 0.0))
        else:
            above = float(stats.t.sf(-mean / sd, df))
        hit = self.exact_hit.get(family_of(kind), 0.0)
        return hit + (1.0 - hit) * above

    def p_met_row(self, row: ReferenceRow) -> float:
        return self.p_met(row.kind, row.binding, row.plan_level, row.horizon, required=row.required,
                          trend_growth=row.trend_growth)

    def summary(self, digits: int = 4) -> str:
        law = {"normal": "WLS, normal residuals", "empirical": "WLS, empirical residuals",
               "t": f"Student-t residuals (ML, ν = {self.df:.2f})"}[self.residual]
        hits = ", ".join(f"{k} {v:.3f}" for k, v in self.exact_hit.items())
        hits = f"; exact hits apart: {hits}" if hits else ""
        variance = "; variance model ln σ² = γ_family + δ ln h" if self.variance_model else ""
        lines = [f"margin model: {law}{variance}; n = {self.n}, {len(self.columns)} coefficients, df = {self.df:g}, "
                 f"scale s = {math.sqrt(self.scale):.{digits}g}{hits}",
                 f"{'coefficient':<22}{'estimate':>11}{'s.e.':>10}{'WLS HC1':>10}{'t':>8}"]
        for name, b, s, h in zip(self.columns, self.beta, self.se, self.se_hc1):
            lines.append(f"{name:<22}{b:>11.{digits}f}{s:>10.{digits}f}{h:>10.{digits}f}{b / s:>8.2f}")
        if self.variance_model:
            sd = ", ".join(f"{f} {math.sqrt(self.scale * math.exp(self.gamma[f])):.{digits}f}" for f in self.families)
            power = ", ".join(f"{f} h^{self.delta.get(f, 0.0) / 2:.2f}" for f in self.families)
            lines.append(f"residual scale at h = 1 year: {sd}; times, for h years: {power}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "df": self.df, "scale": self.scale, "variance_model": self.variance_model,
                "residual": self.residual, "exact_hit": dict(self.exact_hit),
                "coefficients": {c: {"estimate": float(b), "se": float(s), "se_hc1": float(h)}
                                 for c, b, s, h in zip(self.columns, self.beta, self.se, self.se_hc1)},
                "log_relative_variance": {"family": dict(self.gamma), "ln_horizon": dict(self.delta)}}


def _margin_rows(rows: Sequence[ReferenceRow]) -> list[ReferenceRow]:
    return [r for r in rows if r.margin is not None]


def fit_margin_model(rows: Sequence[ReferenceRow], *, variance_model: bool = True, residual: str = "normal",
                     exact_hits: bool = False, horizon_slope: str = "common",
                     columns: Sequence[str] | None = None) -> MarginFit:
    """Fit the margin regression to the rows that have a margin (see the module docstring).

    ``residual``: ``"normal"`` (WLS; the predictive law is Student-t with ``n − p`` df), ``"t"`` (a
    Student-t residual law with its df estimated by maximum likelihood: heavy tails), ``"empirical"``
    (WLS for the mean; P(met) from the standardised training residuals, which keeps their skew).
    ``exact_hits``: leave the margins of exactly 0 (outcome reported as exactly the target) out of
    the regression and give them a point mass per family in :meth:`MarginFit.p_met`.
    """
    import statsmodels.api as sm

    data = _margin_rows(rows)
    hits: dict[str, float] = {}
    if exact_hits:
        for fam in _families(data):
            members = [r for r in data if r.family == fam]
            k = sum(abs(r.margin) <= EXACT_HIT for r in members)
            hits[fam] = (k + 0.5) / (len(members) + 1.0)  # Jeffreys: never 0 or 1
        data = [r for r in data if abs(r.margin) > EXACT_HIT]
    cols = tuple(columns) if columns is not None else _columns(data)
    p = len(cols)
    if len(data) < p + 3:
        raise FitError(f"outside view: {len(data)} reference margins are too few for {p} coefficients")
    X = np.array([[_row_covariates(r)[c] for c in cols] for r in data])
    y = np.array([r.margin for r in data], dtype=float)
    fams = _families(data)
    gamma = {f: 0.0 for f in fams}
    delta: dict[str, float] = {f: 0.0 for f in fams}
    v = np.ones(len(data))
    if variance_model:
        member = {f: np.array([r.family == f for r in data]) for f in fams}
        ln_h = np.array([math.log(r.horizon) for r in data])
        if horizon_slope == "family":
            sloped = [f for f in fams if np.ptp(ln_h[member[f]]) > 0]
            slopes = [member[f] * ln_h for f in sloped]
        elif horizon_slope == "common":
            sloped = ["*"] if np.ptp(ln_h) > 0 else []
            slopes = [ln_h] if sloped else []
        else:
            raise ValueError(f"horizon_slope must be 'family' or 'common', not {horizon_slope!r}")
        Z = np.column_stack([member[f].astype(float) for f in fams] + slopes)
        for _ in range(FGLS_ROUNDS):  # residuals of the current WLS fit → variance model → weights
            resid = sm.WLS(y, X, weights=1.0 / v).fit().resid
            g = sm.OLS(np.log(np.maximum(resid ** 2, 1e-12)), Z).fit().params
            gamma = {f: float(g[i] - g[0]) for i, f in enumerate(fams)}
            delta = {f: float(g[len(fams) + sloped.index(f)]) if f in sloped
                     else float(g[len(fams)]) if sloped == ["*"] else 0.0 for f in fams}
            v = np.array([math.exp(gamma[r.family] + delta[r.family] * math.log(r.horizon)) for r in data])
    model = sm.WLS(y, X, weights=1.0 / v)
    res = model.fit()
    hc1 = model.fit(cov_type="HC1")
    beta, cov = np.asarray(res.params, dtype=float), np.asarray(res.cov_params(), dtype=float)
    scale, df = float(res.scale), float(res.df_resid)
    standardised = np.zeros(0)
    if residual == "t":
        beta, cov, scale, df = _t_regression(y / np.sqrt(v), X / np.sqrt(v)[:, None], beta, math.sqrt(scale))
    elif residual == "empirical":
        standardised = np.asarray(res.resid, dtype=float) / np.sqrt(scale * v)
    elif residual != "normal":
        raise ValueError(f"residual must be 'normal', 't' or 'empirical', not {residual!r}")
    return MarginFit(columns=cols, beta=beta, cov=cov, cov_hc1=np.asarray(hc1.cov_params(), dtype=float),
                     scale=scale, df=df, n=len(data), families=fams, gamma=gamma, delta=delta,
                     variance_model=variance_model, exact_hit=hits, residual=residual,
                     residuals=standardised, plans=tuple(sorted({r.plan for r in data})))


def _t_regression(y: np.ndarray, X: np.ndarray, beta0: np.ndarray,
                  tau0: float) -> tuple[np.ndarray, np.ndarray, float, float]:
    """``(β̂, Ĉov(β̂), τ̂², ν̂)`` of ``y = Xβ + τ·t_ν`` by maximum likelihood (ν in [1, 200]); the
    covariance is the inverse observed information of β (numerical Hessian of the full likelihood)."""
    from scipy import optimize, special
    from statsmodels.tools.numdiff import approx_hess

    n, p = X.shape

    def nll(theta: np.ndarray) -> float:
        b, log_tau, log_nu = theta[:p], theta[p], theta[p + 1]
        tau, nu = math.exp(log_tau), math.exp(log_nu)
        z = (y - X @ b) / tau
        ll = (special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) - 0.5 * math.log(nu * math.pi) - log_tau
              - (nu + 1) / 2 * np.log1p(z * z / nu))
        return float(-np.sum(ll))

    start = np.concatenate([beta0, [math.log(max(tau0, 1e-6)), math.log(5.0)]])
    bounds = [(None, None)] * (p + 1) + [(0.0, math.log(200.0))]
    best = optimize.minimize(nll, start, method="L-BFGS-B", bounds=bounds)
    theta = best.x
    hess = approx_hess(theta, nll)
    try:
        cov_all = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        cov_all = np.linalg.pinv(hess)
    cov = cov_all[:p, :p]
    if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) <= 0):
        raise FitError("outside view: the t regression's information matrix is singular")
    return theta[:p], cov, math.exp(2 * theta[p]), math.exp(theta[p + 1])


# ------------------------------------------------------------------------------------------------ logistic model

@dataclass(frozen=True, eq=False)
class MetLogit:
    """A logistic model of ``met`` on the same covariates (every row with ``met``, margin or not)."""

    columns: tuple[str, ...]
    beta: np.ndarray
    cov: np.ndarray
    n: int
    regularised: bool
    plans: tuple[str, ...] = field(default=())

    def p_met_row(self, row: ReferenceRow) -> float:
        return self._p(_row_covariates(row))

    def p_met(self, kind: str, binding: str, plan_level: str, horizon: float) -> float:
        """P(met) of a new target of this kind, type, plan level and horizon."""
        _validate(kind, binding, plan_level, horizon)
        return self._p(_covariates(kind, binding, plan_level, horizon, None, None))

    def p_met_interval(self, kind: str, binding: str, plan_level: str, horizon: float,
                       z: float = 1.0) -> tuple[float, float, float]:
        """``(P(met), low, high)``: the logistic of the linear predictor and of it ± ``z`` standard errors
        (from the coefficients' covariance)."""
        _validate(kind, binding, plan_level, horizon)
        covariates = _covariates(kind, binding, plan_level, horizon, None, None)
        x = np.array([covariates[c] for c in self.columns])
        eta, se = float(x @ self.beta), math.sqrt(max(float(x @ self.cov @ x), 0.0))
        return tuple(1.0 / (1.0 + math.exp(-e)) for e in (eta, eta - z * se, eta + z * se))

    def _p(self, covariates: dict[str, float]) -> float:
        eta = float(np.array([covariates[c] for c in self.columns]) @ self.beta)
        return 1.0 / (1.0 + math.exp(-eta))

    def summary(self, digits: int = 3) -> str:
        se = np.sqrt(np.diag(self.cov)) if self.cov.size else np.full(len(self.columns), np.nan)
        ridge = f" (ridge, α = {RIDGE:g}, against separation; approximate s.e.)" if self.regularised else ""
        lines = [f"logistic model of met: n = {self.n}{ridge}",
                 f"{'coefficient':<22}{'estimate':>10}{'s.e.':>9}"]
        lines += [f"{c:<22}{b:>10.{digits}f}{s:>9.{digits}f}" for c, b, s in zip(self.columns, self.beta, se)]
        return "\n".join(lines)


def fit_met_logit(rows: Sequence[ReferenceRow], *, columns: Sequence[str] | None = None) -> MetLogit:
    """Fit ``P(met) = logistic(x'β)`` to every row with ``met`` (margin or not)."""
    import statsmodels.api as sm

    data = [r for r in rows if r.met is not None]
    cols = tuple(columns) if columns is not None else tuple(c for c in _columns(data) if c != "required_minus_trend"
                                                                    and c != "trend_missing")
    X = np.array([[_row_covariates(r)[c] for c in cols] for r in data])
    y = np.array([r.met for r in data], dtype=float)
    model = sm.GLM(y, X, family=sm.families.Binomial())
    regularised = False
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            res = model.fit()
        beta, cov = np.asarray(res.params, dtype=float), np.asarray(res.cov_params(), dtype=float)
        if not np.all(np.isfinite(beta)) or np.any(np.abs(beta) > 15):
            raise ValueError("separation")
    except Exception:  # noqa: BLE001 - perfect separation or non-convergence: a small ridge keeps it finite
        regularised = True
        res = model.fit_regularized(alpha=RIDGE, L1_wt=0.0)
        beta = np.asarray(res.params, dtype=float)
        # approximate covariance: the inverse Hessian of the penalised objective (n·α on the diagonal)
        p = 1.0 / (1.0 + np.exp(-(X @ beta)))
        hessian = X.T @ (X * (p * (1.0 - p))[:, None]) + len(data) * RIDGE * np.eye(len(cols))
        cov = np.linalg.inv(hessian)
    return MetLogit(columns=cols, beta=beta, cov=cov, n=len(data), regularised=regularised,
                    plans=tuple(sorted({r.plan for r in data})))


# ------------------------------------------------------------------------------------------------ the prior

_DEFAULT: MarginFit | None = None
_DEFAULT_LOGIT: MetLogit | None = None
CENTRES = ("margin", "p_met")


def default_fit() -> MarginFit:
    """The margin model fitted to the shipped reference class (cached for the process)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = fit_margin_model(load_reference())
    return _DEFAULT


def default_logit() -> MetLogit:
    """The logistic model of ``met`` fitted to the shipped reference class (cached for the process)."""
    global _DEFAULT_LOGIT
    if _DEFAULT_LOGIT is None:
        _DEFAULT_LOGIT = fit_met_logit(load_reference())
    return _DEFAULT_LOGIT


def outside_view_growth(required_growth: float, horizon: float, kind: str = "level", binding: str = "expected",
                        plan_level: str = "city", trend_growth: float | None = None, *,
                        fit: MarginFit | None = None, centre: str = "margin",
                        logit: MetLogit | None = None) -> tuple[float, float]:
    """``(log_mean, log_sd)`` of the indicator's average yearly log growth over ``horizon`` years, from
    the outside view: ``required_growth + m`` with ``m`` the predicted margin of a past target of this
    ``kind``, ``binding`` and ``plan_level``.

    ``required_growth`` is the average log growth the target needs (``ln(T/b)/h`` for a level; for a
    growth-rate target ``ln(1+T)``; for a share the yearly logit change); ``trend_growth`` the
    indicator's trend on the same scale, if known (used only by a model fitted with a trend column).
    ``log_sd`` is the predictive scale (parameter uncertainty included). ``fit`` defaults to
    :func:`default_fit`.

    ``centre="p_met"`` keeps ``log_sd`` but moves the centre to ``log_sd·Φ⁻¹(p)``, ``p`` the logistic
    model's P(met) (``logit``, default :func:`default_logit`): a normal law of the average growth then
    meets the target with the probability that model gives, the one forecaster that beats the base rate
    leave-one-plan-out (see the module docstring).
    """
    if not (isinstance(required_growth, (int, float)) and math.isfinite(required_growth)):
        raise FitError(f"outside view: required growth must be a finite number, not {required_growth!r}")
    model = fit if fit is not None else default_fit()
    mean, sd, _ = model.predict(kind, binding, plan_level, horizon, required=required_growth,
                                trend_growth=trend_growth)
    if centre == "p_met":
        from scipy import stats

        p = (logit if logit is not None else default_logit()).p_met(kind, binding, plan_level, horizon)
        mean = sd * float(stats.norm.ppf(p))
    elif centre != "margin":
        raise FitError(f"outside view: centre must be one of {', '.join(CENTRES)}, not {centre!r}")
    return float(required_growth + mean), float(sd)


def outside_view_margin(horizon: float, kind: str = "level", binding: str = "expected", plan_level: str = "city",
                        *, fit: MarginFit | None = None, centre: str = "margin",
                        logit: MetLogit | None = None) -> tuple[float, float, float]:
    """``(centre, sd, centre_se)`` of the yearly margin of a target of this kind, type and plan level over
    ``horizon`` years: the predicted margin (``centre="margin"``) or the one that meets the target with
    the logistic model's P(met) under a normal law of that s.d. (``centre="p_met"``); ``sd`` the
    predictive s.d.; ``centre_se`` the standard error of the predicted margin alone."""
    model = fit if fit is not None else default_fit()
    mean, sd, _ = model.predict(kind, binding, plan_level, horizon)
    if centre == "p_met":
        from scipy import stats

        p = (logit if logit is not None else default_logit()).p_met(kind, binding, plan_level, horizon)
        mean = sd * float(stats.norm.ppf(p))
    elif centre != "margin":
        raise FitError(f"outside view: centre must be one of {', '.join(CENTRES)}, not {centre!r}")
    x = model.vector(kind, binding, plan_level, horizon)
    return float(mean), float(sd), math.sqrt(float(x @ model.cov @ x))


def growth_mean_prior_sd(spread: float, volatility: float, horizon: float, centre_se: float) -> float:
    """The s.d. of a process's growth mean (its per-path yearly mean) that the outside view implies:
    the predictive s.d. ``spread`` of the yearly margin over ``horizon`` years holds both the growth
    mean's uncertainty and the process's own yearly noise averaged over the horizon
    (``volatility²/horizon``), which the simulation adds again; so the mean gets what is left,
    ``sqrt(spread² − volatility²/horizon)``, never below the predicted margin's standard error
    ``centre_se`` (the outside view's centre is never known better than that). The one rule for the
    outside view's parameters and for the prior of ``prior: outside_view``."""
    if not horizon > 0:
        raise FitError(f"outside view: the horizon must be positive, not {horizon!r}")
    return math.sqrt(max(spread ** 2 - volatility ** 2 / horizon, centre_se ** 2))


@dataclass(frozen=True)
class CountAdditions:
    """A count's yearly additions from the outside view: the per-path mean ``mean`` and its s.d.
    ``mean_sd`` (a gamma law, what ``additions: {mean: {mean, sd}}`` draws), the moments of the yearly
    additions the margin implies (``implied_mean``, ``implied_sd``), and ``note`` (empty, or why the
    s.d. is only the floor: the count's own noise is already about as wide as the outside view's spread)."""

    mean: float
    mean_sd: float
    implied_mean: float
    implied_sd: float
    note: str = ""


_HERMITE = 64  # Gauss-Hermite nodes for the moments of a function of the normal margin


def outside_view_count_additions(target: float, start: float, horizon: float, margin_centre: float, margin_sd: float,
                                 *, on_stock: bool, dispersion: float | None = None,
                                 mean_se: float = 0.0) -> CountAdditions:
    """The yearly additions of a count whose target's margin ``m`` (yearly, on the log scale) is
    ``Normal(margin_centre, margin_sd)``, over ``horizon`` years.

    ``on_stock``: the target is the stock's level (a ``level`` row of the reference class: the stock
    ``S(h) = target·e^{h·m}``, so the additions over the horizon are ``S(h) − start``, never below 0);
    otherwise it is the additions themselves (a ``count`` row: they total ``target·e^{h·m}``; for a
    target on each year's additions ``horizon`` is 1 and ``target`` the yearly threshold). The yearly
    mean ``λ = additions/h`` then has the mean and variance those laws give (Gauss-Hermite), and the
    count's per-path mean takes that mean and the part of the variance the count's own yearly noise
    (Poisson: ``λ/h`` of ``λ``'s variance; a negative binomial with ``dispersion`` k adds ``λ²/(h·k)``)
    does not already give: ``Var(λ) = Var(A/h) − E[λ]/h − E[λ]²/(h·k)``, divided by ``1 + 1/(h·k)``.
    So the total additions over the horizon have (to this moment match) the outside view's mean and
    variance, and P(met) is close to the margin's ``P(m ≥ 0)``.

    ``mean_se``: the standard error of the yearly mean that the predicted margin's own uncertainty
    gives (the caller maps the margin's ``centre_se`` through this law); the s.d. of the per-path mean
    is never below it, as the lognormal and share mappings floor theirs at ``centre_se``
    (:func:`growth_mean_prior_sd`): a count whose own noise is wider than the spread still does not
    know the outside view's centre better than the reference class does.
    """
    if not (target > 0 and horizon > 0 and margin_sd >= 0 and start >= 0 and mean_se >= 0):
        raise FitError(f"outside view for a count: needs a positive target and horizon and a start >= 0 "
                       f"(target {target!r}, start {start!r}, horizon {horizon!r})")
    nodes, weights = np.polynomial.hermite_e.hermegauss(_HERMITE)
    weights = weights / weights.sum()
    m = margin_centre + margin_sd * nodes
    total = target * np.exp(np.clip(horizon * m, -50.0, 50.0))
    additions = np.maximum(total - start, 0.0) if on_stock else total
    lam = additions / horizon
    mean = float(weights @ lam)
    var = float(weights @ (lam - mean) ** 2)
    k = dispersion if dispersion else math.inf
    own = mean / horizon + mean * mean / (horizon * k)
    param_var = (var - own) / (1.0 + 1.0 / (horizon * k))
    note = ""
    if param_var <= mean_se ** 2:
        param_var = mean_se ** 2
        note = ("the count's own yearly noise leaves less than the predicted margin's own uncertainty: the s.d. "
                "of the mean is that standard error" if mean_se > 0 else
                "the count's own yearly noise is already as wide as the outside view's spread: mean known")
    return CountAdditions(mean=mean, mean_sd=math.sqrt(param_var), implied_mean=mean, implied_sd=math.sqrt(var),
                          note=note)


# ------------------------------------------------------------------------------------------------ scheduled counts

#: what a scheduled count's target reads (:func:`scheduled_met_given_delivery`)
SCHEDULED_MEASURES = ("stock", "cumulative", "in_year", "per_year")
#: bins of δ on [0, 1] over which :func:`scheduled_p_met` integrates P(met | δ) against the per-path
#: delivery law (Beta): P(met | δ) at each bin's middle times the law's mass in the bin
_DELIVERY_BINS = 512
#: the default s.d. of a scheduled count's per-path delivery probability (programme-level risk) under the
#: outside view: the shipped models' assumption (models/wuhan.yaml header), the reference class has no
#: record of how delivery varies between a city's programmes
DELIVERY_SD = 0.1


@dataclass(frozen=True)
class ScheduledDelivery:
    """A scheduled count's delivery law from the outside view: the per-path Beta law's ``mean`` (with
    its standard error ``mean_se`` from the logistic model's own) and ``sd``; ``p_target`` the outside
    view's P(met) it reproduces (and ``p_low``, ``p_high``: ± one standard error of the logistic model's
    linear predictor)."""

    mean: float
    mean_se: float
    sd: float
    p_target: float
    p_low: float
    p_high: float


def _binomial_rows(n: int, p: np.ndarray) -> np.ndarray:
    """``Binomial(n, p_j)``'s pmf on 0..n, one row per ``p_j`` (from its logarithm: the log binomial
    coefficient once, then ``k ln p + (n − k) ln(1 − p)``, 0·ln 0 = 0)."""
    from scipy import special

    k = np.arange(n + 1, dtype=float)
    log_choose = special.gammaln(n + 1.0) - special.gammaln(k + 1.0) - special.gammaln(n - k + 1.0)
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.exp(log_choose[None, :] + special.xlogy(k[None, :], p) + special.xlog1py(n - k[None, :], -p))


def _convolve_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise convolution of two pmf arrays (FFT; tiny negative round-off clipped)."""
    size = a.shape[1] + b.shape[1] - 1
    fft = 1 << (size - 1).bit_length()
    out = np.fft.irfft(np.fft.rfft(a, fft, axis=1) * np.fft.rfft(b, fft, axis=1), fft, axis=1)[:, :size]
    return np.clip(out, 0.0, None)


def _deliveries_pmf(planned: Sequence[int], chances: Sequence[np.ndarray]) -> np.ndarray:
    """pmf (rows: δ values) of the units delivered, a sum of independent binomials: ``planned[t]`` units,
    each delivered with probability ``chances[t]`` (one per δ)."""
    pmf = np.ones((len(chances[0]), 1))
    for n, p in zip(planned, chances):
        if n > 0:
            pmf = _convolve_rows(pmf, _binomial_rows(int(n), p))
    return pmf


def _tail(pmf: np.ndarray, need: np.ndarray) -> np.ndarray:
    """``P(D ≥ need_k)`` for each row of ``pmf`` and each whole ``need_k``: shape (rows, len(need))."""
    survival = np.concatenate([np.cumsum(pmf[:, ::-1], axis=1)[:, ::-1], np.zeros((pmf.shape[0], 1))], axis=1)
    index = np.clip(need, 0, pmf.shape[1]).astype(np.int64)
    return np.minimum(survival[:, index], 1.0)


def scheduled_met_given_delivery(delivery: np.ndarray, planned: Sequence[int], carry_over: float, *, measure: str,
                                 step: int, need: float, strict: bool = False,
                                 start_values: Sequence[float] = (0.0,),
                                 start_probs: Sequence[float] = (1.0,)) -> np.ndarray:
    """P(the target is met | the path's delivery probability δ), exactly, for each δ of ``delivery``.

    The scheduled count (README "A scheduled count"): ``planned[t − 1]`` units planned in year ``t`` (years
    after the base year), each delivered in year ``t + k`` with probability ``δ·r^k``, ``r = (1 − δ)·c``
    (slipped ``k`` times, each time carried with probability ``c`` = ``carry_over``), independently given
    δ. ``measure`` (:data:`SCHEDULED_MEASURES`), read at year ``step`` after the base year:

    - ``stock``: the start plus the deliveries by ``step`` (start law: ``start_values``/``start_probs``);
    - ``cumulative``: the deliveries by ``step``; ``in_year``: the deliveries in year ``step`` alone;
    - ``per_year``: the average over years 1..``step`` of P(that year's deliveries meet ``need``) (each
      year's margin is exact; the years are coupled by carry-over, so their joint is not computed here).

    Met: the measure ``≥ need`` (``strict``: ``> need``); a whole count, so ``≥ ⌈need⌉`` (``≥ ⌊need⌋ + 1``).
    """
    if measure not in SCHEDULED_MEASURES:
        raise FitError(f"scheduled count: measure must be one of {', '.join(SCHEDULED_MEASURES)}, not {measure!r}")
    delta = np.asarray(delivery, dtype=float)
    r = (1.0 - delta) * carry_over
    years = list(planned[:step])
    least = math.floor(need) + 1 if strict else math.ceil(need - 1e-9)

    def by_year(y: int) -> np.ndarray:  # P(met) on that year's deliveries alone
        chances = [delta * r ** (y - t) for t in range(1, y + 1)]
        return _tail(_deliveries_pmf(years[:y], chances), np.array([least]))[:, 0]

    if measure == "in_year":
        return by_year(step)
    if measure == "per_year":
        return np.mean([by_year(y) for y in range(1, step + 1)], axis=0)
    # delivered by `step`: δ(1 + r + … + r^(step − t))
    chances = [delta * np.where(r < 1.0, (1.0 - r ** (step - t + 1)) / np.where(r < 1.0, 1.0 - r, 1.0),
                                step - t + 1.0) for t in range(1, step + 1)]
    pmf = _deliveries_pmf(years, chances)
    if measure == "cumulative":
        return _tail(pmf, np.array([least]))[:, 0]
    values = np.asarray(start_values, dtype=float)
    probs = np.asarray(start_probs, dtype=float)
    need_each = np.maximum(least - values, 0.0)
    return _tail(pmf, need_each) @ (probs / probs.sum())


#: the most start values over which :func:`scheduled_met_planned_from_start` sums (beyond it: equiprobable
#: quantile nodes of the start's law)
START_NODES = 32


def start_nodes(values: Sequence[float], probs: Sequence[float], nodes: int = START_NODES) -> tuple[np.ndarray, np.ndarray]:
    """The start law itself where it has at most ``nodes`` values, else ``nodes`` equiprobable quantile
    nodes of it (the value at each ``(j + 1/2)/nodes`` quantile, weight ``1/nodes``)."""
    values, probs = np.asarray(values, dtype=float), np.asarray(probs, dtype=float)
    probs = probs / probs.sum()
    if len(values) <= nodes:
        return values, probs
    cdf = np.cumsum(probs)
    picks = values[np.minimum(np.searchsorted(cdf, (np.arange(nodes) + 0.5) / nodes), len(values) - 1)]
    return picks, np.full(nodes, 1.0 / nodes)


def scheduled_met_planned_from_start(delivery: np.ndarray, plan_of_start: Callable[[float], Sequence[int]],
                                     carry_over: float, *, step: int, need: float, strict: bool,
                                     start_values: Sequence[float], start_probs: Sequence[float]) -> np.ndarray:
    """P(the stock meets the target | δ) of a scheduled count that plans from each path's own start
    (``plan_to``): :func:`scheduled_met_given_delivery` (measure ``stock``) for each start node
    (:func:`start_nodes`) with the units ``plan_of_start(start)`` plans, weighted by the node's
    probability. Exact for a start law of at most :data:`START_NODES` values; beyond, a quadrature over
    the start's quantiles."""
    values, probs = start_nodes(start_values, start_probs)
    total = np.zeros(len(np.asarray(delivery)))
    for value, prob in zip(values, probs):
        total += prob * scheduled_met_given_delivery(delivery, plan_of_start(value), carry_over, measure="stock",
                                                     step=step, need=need, strict=strict, start_values=(value,),
                                                     start_probs=(1.0,))
    return total


def _delivery_grid(bins: int = _DELIVERY_BINS) -> tuple[np.ndarray, np.ndarray]:
    """The bins' edges and middles on [0, 1]."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    return edges, (edges[:-1] + edges[1:]) / 2.0


def _beta_masses(mean: float, sd: float, edges: np.ndarray) -> np.ndarray:
    """The mass the Beta law with this mean and s.d. (the kernel's per-path law) puts in each bin."""
    from scipy import special

    kappa = mean * (1.0 - mean) / sd ** 2 - 1.0
    return np.diff(special.betainc(mean * kappa, (1.0 - mean) * kappa, edges))


def _p_met_on_grid(table: np.ndarray, edges: np.ndarray, middles: np.ndarray, mean: float, sd: float) -> float:
    """P(met) from P(met | δ) tabulated at the bins' middles: weighted by the Beta law's mass in each bin (``sd``
    0: interpolated at ``mean``)."""
    if sd <= 0.0:
        return float(np.interp(mean, middles, table))
    return float(_beta_masses(mean, sd, edges) @ table)


def scheduled_p_met(met_given: Callable[[np.ndarray], np.ndarray], mean: float, sd: float) -> float:
    """P(met) of a scheduled count whose delivery probability is ``Beta(mean, sd)`` per path (``sd`` 0:
    ``mean`` on every path), given ``met_given(δ)`` (:func:`scheduled_met_given_delivery`)."""
    if sd <= 0.0:
        return float(met_given(np.array([mean]))[0])
    edges, middles = _delivery_grid()
    return _p_met_on_grid(met_given(middles), edges, middles, mean, sd)


def outside_view_delivery(met_given: Callable[[np.ndarray], np.ndarray], p_target: float, sd: float, *,
                          p_low: float | None = None, p_high: float | None = None,
                          bins: int = _DELIVERY_BINS) -> ScheduledDelivery:
    """The mean of a scheduled count's per-path delivery law (``Beta``, s.d. ``sd``) that meets its target
    with probability ``p_target`` (the outside view's P(met)); ``p_low``/``p_high`` (default
    ``p_target``) give the mean's standard error by the delta method: their half-distance over the slope of
    P(met) in the mean.
    Raises :class:`FitError` where no mean can (the schedule plans too few units, or so many that the
    target is met even at the lowest mean)."""
    from scipy import optimize

    if not 0.0 < p_target < 1.0:
        raise FitError(f"scheduled count: the outside view's P(met) must lie in (0, 1), not {p_target!r}")
    if not 0.0 <= sd < 0.5:
        raise FitError(f"scheduled count: the delivery s.d. must lie in [0, 0.5), not {sd!r}")
    edges, middles = _delivery_grid(bins)
    table = met_given(middles)

    def met(mean: float) -> float:
        return _p_met_on_grid(table, edges, middles, mean, sd)

    # the Beta law needs sd² < m(1 − m): the means it allows
    reach = math.sqrt(max(1.0 - 4.0 * sd * sd, 0.0))
    low, high = (1.0 - reach) / 2.0 + 1e-6, (1.0 + reach) / 2.0 - 1e-6
    if sd <= 0.0:
        low, high = 0.0, 1.0

    at_high, at_low = met(high), met(low)
    if at_high < p_target:
        raise FitError(f"the schedule cannot reach the outside view's P(met) {p_target:.3f}: at the highest delivery "
                       f"mean the delivery s.d. {sd:g} allows ({high:.4f}) the target is met with P "
                       f"{at_high:.3f}; plan more units (or a smaller delivery s.d.)")
    if at_low > p_target:
        raise FitError(f"the schedule meets its target with P {at_low:.3f} even at the lowest delivery mean "
                       f"({low:.4f}), above the outside view's {p_target:.3f}: it plans far more than the target needs")
    mean = float(optimize.brentq(lambda m: met(m) - p_target, low, high, xtol=1e-8))
    # the mean's standard error by the delta method: the P(met) interval's half-width over dP/dmean at the mean
    # (never more than half the range of means the s.d. allows)
    step = 1e-4 * (high - low)
    there = min(mean + step, high)
    slope = (met(there) - p_target) / (there - mean) if there > mean else 0.0
    half = (abs((p_high if p_high is not None else p_target) - (p_low if p_low is not None else p_target)) / 2.0)
    mean_se = min(half / slope, (high - low) / 2.0) if slope > 0.0 else (high - low) / 2.0 if half > 0 else 0.0
    return ScheduledDelivery(mean=mean, mean_se=mean_se, sd=sd, p_target=p_target,
                             p_low=p_target if p_low is None else p_low, p_high=p_target if p_high is None else p_high)


# ------------------------------------------------------------------------------------------------ combining

def combine_normal(prior_mean: float, prior_sd: float, mean: float, se: float) -> tuple[float, float]:
    """The normal-normal update: a prior ``N(prior_mean, prior_sd²)`` of a growth mean and an estimate
    ``mean`` with standard error ``se`` give the posterior ``(mean, sd)``, the precision-weighted mean
    (a zero s.d. on either side: that side alone)."""
    if prior_sd <= 0.0:
        return float(prior_mean), 0.0
    if se <= 0.0:
        return float(mean), 0.0
    w_prior, w_data = 1.0 / prior_sd ** 2, 1.0 / se ** 2
    return float((w_prior * prior_mean + w_data * mean) / (w_prior + w_data)), float(math.sqrt(1.0 / (w_prior + w_data)))


@dataclass(frozen=True)
class SeriesTrend:
    """The realised yearly log growths of the same issuer's same indicator in the years before a target:
    their mean, sample s.d. and number (a city series as a yearly work report's table gives it)."""

    mean: float
    sd: float
    n: int
    years: tuple[int, ...]


def _issuer_key(row: ReferenceRow) -> tuple[str, str, str]:
    return re.sub(r"^\s*\d{4}\s*年", "", row.plan).strip(), row.indicator, row.unit


def series_trends(rows: Sequence[ReferenceRow], *, min_years: int = 3, max_years: int = 5) -> dict[str, SeriesTrend]:
    """For each one-year growth-rate target (``kind`` growth, ``>=``/``~`` comparator, a margin) whose
    plan is a yearly report (a name like "2015年武汉市政府工作报告"), the trend of the same issuer's
    same indicator from the realised values of its targets for the ``max_years`` years before (at
    least ``min_years``): ``ln(1 + R/100)`` per year. Only realised outcomes of earlier years are
    used, so the trend is what a forecaster had when the target was set (the reference class's own
    ``trend_growth`` column is empty)."""
    annual = [r for r in rows if r.kind == "growth" and r.horizon == 1 and r.realised_value is not None
              and r.target_year is not None and re.match(r"\s*\d{4}\s*年", r.plan) and r.unit == "percent"
              and not _REDUCTION.search(r.indicator) and r.realised_value > -100.0]
    by_key: dict[tuple[str, str, str], dict[int, float]] = {}
    for r in annual:
        by_key.setdefault(_issuer_key(r), {})[r.target_year] = math.log1p(r.realised_value / 100.0)
    out: dict[str, SeriesTrend] = {}
    for r in annual:
        if r.margin is None or r.comparator.strip().startswith("<"):
            continue
        history = by_key[_issuer_key(r)]
        years = tuple(sorted(y for y in history if r.target_year - max_years <= y < r.target_year))
        if len(years) < min_years:
            continue
        values = np.array([history[y] for y in years])
        out[r.id] = SeriesTrend(mean=float(values.mean()), sd=float(values.std(ddof=1)), n=len(years), years=years)
    return out


def combined_forecasts(rows: Sequence[ReferenceRow], trends: dict[str, SeriesTrend], *,
                       min_sd: float = 0.005) -> list[tuple[ReferenceRow, float, float, float]]:
    """Leave-one-plan-out P(met) of every row with a trend: ``(row, outside view, trend, combined)``.

    For a target needing log growth ``t`` (``ln(1 + T/100)``), with the margin model fitted without the
    row's plan predicting ``m ~ N(c, s²)``, and the trend's ``n`` earlier yearly log growths of mean
    ``ḡ`` and s.d. ``σ`` (at least ``min_sd``):

    - outside view: the realised growth ``~ N(t + c, s²)``;
    - trend: ``~ N(ḡ, σ²(1 + 1/n))`` (the textbook predictive of a new year);
    - combined: the outside view as the prior of the growth mean, ``μ ~ N(t + c, s_μ²)`` with
      ``s_μ² = max(s² − σ², se_c²)`` (:func:`growth_mean_prior_sd`: the predictive ``s²`` already holds
      a year's own noise, which comes back on top; ``se_c`` the predicted margin's standard error),
      updated by the series, ``ḡ ~ N(μ, σ²/n)`` (:func:`combine_normal`), and the year's own noise on
      top: ``~ N(μ*, v* + σ²)``. With no series (``n → 0``) that is the outside view's ``N(t + c, s²)``
      (unless ``σ > s``).

    Each P(met) is ``P(growth ≥ t)``.
    """
    from scipy import stats

    out = []
    plans = sorted({r.plan for r in rows if r.id in trends})
    for plan in plans:
        train = [r for r in rows if r.plan != plan]
        fit = fit_margin_model(train)
        for r in rows:
            if r.plan != plan or r.id not in trends:
                continue
            tr = trends[r.id]
            sigma = max(tr.sd, min_sd)
            need = math.log1p(r.target_value / 100.0)
            c, s, _ = fit.predict(r.kind, r.binding, r.plan_level, r.horizon)
            x = fit.vector(r.kind, r.binding, r.plan_level, r.horizon)
            prior_sd = growth_mean_prior_sd(s, sigma, r.horizon, math.sqrt(float(x @ fit.cov @ x)))
            p_ov = float(stats.norm.sf(need, need + c, s))
            p_trend = float(stats.norm.sf(need, tr.mean, sigma * math.sqrt(1.0 + 1.0 / tr.n)))
            mu, sd = combine_normal(need + c, prior_sd, tr.mean, sigma / math.sqrt(tr.n))
            p_comb = float(stats.norm.sf(need, mu, math.sqrt(sd ** 2 + sigma ** 2 / r.horizon)))
            out.append((r, p_ov, p_trend, p_comb))
    return out


# ------------------------------------------------------------------------------------------------ folds

def leave_one_plan_out(rows: Sequence[ReferenceRow]) -> Iterable[tuple[str, list[ReferenceRow], list[ReferenceRow]]]:
    """``(plan, training rows, held-out rows)`` for each plan: the training rows never include the plan."""
    plans = sorted({r.plan for r in rows})
    for plan in plans:
        test = [r for r in rows if r.plan == plan]
        train = [r for r in rows if r.plan != plan]
        yield plan, train, test
