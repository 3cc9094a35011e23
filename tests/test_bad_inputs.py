"""A corpus of malformed scenarios and baselines, run through the command line.

Every case starts from ``GOOD`` (a small scenario with a baselines CSV, Chinese text in its string
fields) and breaks one thing. The line the error must name is marked ``# <-`` in the broken text (for
a CSV, given as a number). Each case runs ``targetsim run`` with ``-o`` into an empty folder and
checks: a non-zero exit, the file, line and key path in the message, the words that say what is
wrong, no traceback, and no output file.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from targetsim.cli import main

MARK = "# <-"

GOOD = """\
name: 武汉数字贸易测试
description: 《武汉市数字贸易创新发展三年行动计划》的测试情景
base_year: 2024
horizon: 2027
paths: 2000
seed: 1
baselines: b.csv
indicators:
  trade:
    label: 数字订购贸易
    unit: 亿元
    start: baseline
    process: {kind: lognormal, growth: {mean: 0.27, sd: 0.1}, volatility: 0.1}
    parameters: {source: 历年统计公报, assumption: 增速取近三年平均}
  services:
    label: 服务贸易
    unit: 亿元
    start: {value: 50, assumption: 测试假设}
    process:
      kind: ar1_growth
      long_run_growth: 0.08
      persistence: 0.5
      volatility: 0.05
      initial_growth: 0.1
  deliverable:
    label: 可数字化交付的服务贸易
    start: {value: 20, source: 统计年鉴}
    process: {kind: lognormal, growth: 0.1, volatility: 0.1}
  deliverable_share:
    label: 可数字化交付占比
    process: {kind: ratio, numerator: deliverable, denominator: services}
  parks:
    label: 省级跨境电商产业园
    unit: 个
    start: 5
    process: {kind: count, additions: {distribution: poisson, mean: 2}}
  computing:
    label: 算力
    unit: EFLOPS
    start: {value: 3.5, assumption: 未公布全市总量}
    process:
      kind: buildout
      organic: {growth: 0.15, volatility: 0.05}
      projects:
        - {name: 国家超算武汉中心二期, size: 4.0, probability: 0.7, earliest: 2025, latest: 2027}
correlations:
  - [trade, services, 0.3]
jumps:
  - {name: 贸易冲击, probability: 0.05, effects: {trade: -0.2}}
observations:
  trade: {2025: 2100}
targets:
  - id: t_trade
    indicator: trade
    kind: cagr
    threshold: 0.3
    by: 2027
    label: 数字订购贸易年均增长30%
    source: {seed: 000_武汉.txt, clause: （一）总体目标, quote: 数字订购贸易年均增长30%}
  - id: t_share
    indicator: deliverable_share
    kind: share
    threshold: 0.47
    by: 2027
  - id: t_parks
    indicator: parks
    kind: count_stock
    threshold: 10
    by: 2027
not_modelled:
  - {id: t_delivery, kind: 时效, reason: 承诺的交付时间无法模拟, source: 第三条}
"""

CSV = """\
indicator,year,value,unit,source,quote,assumption
trade,2023,1500,亿元,武汉市统计公报 2023,数字订购贸易1500亿元,
trade,2024,1800,亿元,武汉市统计公报 2024,数字订购贸易1800亿元,
"""


def edit(*pairs: str) -> str:
    """``GOOD`` with each ``old`` replaced (once) by ``new``; ``old`` must occur in ``GOOD``."""
    text = GOOD
    for old, new in zip(pairs[::2], pairs[1::2]):
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


@dataclass
class Case:
    id: str
    key: str | None          # the key path the message must name (None: the file as a whole)
    words: str               # what the message must say
    files: dict[str, str | bytes] = field(default_factory=dict)  # name → content; scenario.yaml is run
    line: int | None = None  # the line to name; default: the line marked '# <-' in the file named
    where: str = "scenario.yaml"  # the file the message must name
    args: tuple[str, ...] = ()
    subprocess: bool = False  # run as a real process (a few cases), not with click's runner

    def expected_line(self) -> int | None:
        if self.line is not None:
            return self.line
        text = self.files[self.where]
        text = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        hits = [i for i, line in enumerate(text.splitlines(), 1) if MARK in line]
        assert len(hits) == 1, f"{self.id}: mark exactly one line of {self.where} with '{MARK}'"
        return hits[0]


def case(id: str, key: str | None, words: str, *pairs: str, files: dict | None = None, **kw) -> Case:
    all_files: dict[str, str | bytes] = {"scenario.yaml": edit(*pairs), "b.csv": CSV}
    all_files.update(files or {})
    return Case(id=id, key=key, words=words, files=all_files, **kw)


def csv_case(id: str, key: str | None, words: str, csv: str, line: int, **kw) -> Case:
    return case(id, key, words, files={"b.csv": csv}, line=line, where="b.csv", **kw)


BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))

CASES = [
    # --- wrong types -----------------------------------------------------------------------------
    case("threshold-as-chinese-text", "targets[0].threshold", "expected a number, got the string '三十'",
         "threshold: 0.3", f"threshold: 三十  {MARK}"),
    case("paths-boolean", "paths", "expected a whole number, got a boolean (true)",
         "paths: 2000", f"paths: yes  {MARK}"),
    case("base-year-fraction", "base_year", "expected a whole number, got 2024.5",
         "base_year: 2024", f"base_year: 2024.5  {MARK}"),
    case("horizon-date", "horizon", "expected a whole number, got date",
         "horizon: 2027", f"horizon: 2027-12-31  {MARK}"),
    case("process-a-string", "indicators.parks.process", "expected a mapping with a 'kind'",
         "    process: {kind: count, additions: {distribution: poisson, mean: 2}}", f"    process: count  {MARK}"),
    case("label-a-number", "indicators.services.label", "expected a string, got int 2024",
         "label: 服务贸易", f"label: 2024  {MARK}"),
    case("correlations-a-mapping", "correlations", "expected a list of [indicator_a, indicator_b, rho]",
         "correlations:\n  - [trade, services, 0.3]", f"correlations: {{trade: services}}  {MARK}"),
    case("jumps-a-mapping", "jumps", "expected a list of jumps, got a mapping",
         "jumps:\n  - {name: 贸易冲击, probability: 0.05, effects: {trade: -0.2}}", f"jumps: {{贸易冲击: 0.05}}  {MARK}"),
    case("paths-thousands-separator", "paths", "write numbers without thousands separators: 2000",
         "paths: 2000", f'paths: "2,000"  {MARK}'),
    case("threshold-percent-text", "targets[0].threshold", "write a percentage as a fraction: 0.3 for 30%",
         "threshold: 0.3", f'threshold: "30%"  {MARK}'),
    # --- unknown keys, with a "did you mean" -----------------------------------------------------
    case("top-level-typo", "horizont", "unknown key 'horizont'; did you mean 'horizon'?",
         "seed: 1", f"seed: 1\nhorizont: 2030  {MARK}"),
    case("target-key-typo", "targets[1].treshold", "did you mean 'threshold'?",
         "threshold: 0.47", f"treshold: 0.47  {MARK}"),
    case("process-key-typo", "indicators.services.process.volatilty", "did you mean 'volatility'?",
         "volatility: 0.05", f"volatilty: 0.05  {MARK}"),
    case("indicator-key-typo", "indicators.services.strat", "did you mean 'start'?",
         "start: {value: 50", f"strat: {{value: 50", "测试假设}", f"测试假设}}  {MARK}"),
    case("target-kind-typo", "targets[0].kind", "unknown target kind 'cgar'",
         "kind: cagr", f"kind: cgar  {MARK}"),
    case("process-kind-typo", "indicators.deliverable.process.kind", "did you mean 'lognormal'?",
         "{kind: lognormal, growth: 0.1", f"{{kind: lognormall, growth: 0.1", "volatility: 0.1}\n  deliverable_share",
         f"volatility: 0.1}}  {MARK}\n  deliverable_share"),
    case("chinese-key", "indicators.trade.标签", "unknown key '标签'; allowed keys: label, unit",
         "label: 数字订购贸易", f"标签: 数字订购贸易  {MARK}"),
    case("shock-distribution-typo", "shocks.distribution", "did you mean 'student_t'?",
         "jumps:", f"shocks: {{distribution: studen_t, dof: 5}}  {MARK}\njumps:"),
    # --- missing or unknown indicators -----------------------------------------------------------
    case("target-unknown-indicator", "targets[0].indicator", "unknown indicator 'trad'; did you mean 'trade'?",
         "indicator: trade", f"indicator: trad  {MARK}"),
    case("ratio-unknown-numerator", "indicators.deliverable_share.process.numerator",
         "unknown indicator 'deliverables'", "{kind: ratio, numerator: deliverable,",
         "{kind: ratio, numerator: deliverables,", "denominator: services}", f"denominator: services}}  {MARK}"),
    case("correlation-unknown-indicator", "correlations[0][1]", "unknown indicator 'service'",
         "  - [trade, services, 0.3]", f"  - [trade, service, 0.3]  {MARK}"),
    case("indicators-missing", None, "missing required key 'indicators'", files={
        "scenario.yaml": f"name: 没有指标  {MARK}\nbase_year: 2024\nhorizon: 2027\ntargets: []\n"}),
    case("jump-unknown-indicator", "jumps[0].effects.trades", "unknown indicator 'trades'",
         "effects: {trade: -0.2}}", f"effects: {{trades: -0.2}}}}  {MARK}"),
    case("observation-unknown-indicator", "observations.trades", "did you mean 'trade'?",
         "  trade: {2025: 2100}", f"  trades: {{2025: 2100}}  {MARK}"),
    # --- cycles ------------------------------------------------------------------------------------
    case("ratio-cycle", "indicators.deliverable_share.process", "derived indicators form a cycle",
         "{kind: ratio, numerator: deliverable, denominator: services}",
         f"{{kind: ratio, numerator: share_again, denominator: services}}  {MARK}\n"
         "  share_again:\n    process: {kind: ratio, numerator: deliverable_share, denominator: services}"),
    case("extends-cycle", "extends", "a cycle of 'extends'",
         "name: 武汉数字贸易测试", "extends: parent.yaml\nname: 武汉数字贸易测试",
         files={"parent.yaml": f"extends: scenario.yaml  {MARK}\nname: parent\n"}, where="parent.yaml"),
    case("extends-itself", "extends", "a cycle of 'extends'",
         "name: 武汉数字贸易测试", f"extends: scenario.yaml  {MARK}\nname: 武汉数字贸易测试"),
    case("extends-missing-parent", "extends", "extends a file that is not found",
         "name: 武汉数字贸易测试", f"extends: 基础情景.yaml  {MARK}\nname: 武汉数字贸易测试"),
    case("extends-a-url", "extends", "extends a file that is not found",
         "name: 武汉数字贸易测试", f"extends: https://example.org/base.yaml  {MARK}\nname: 武汉数字贸易测试"),
    case("extends-an-inherited-error", "targets[0].threshold", "a share is a fraction",
         "name: 武汉数字贸易测试", "extends: parent.yaml\nname: 武汉数字贸易测试",
         files={"parent.yaml": "targets:\n  - id: t_extra\n    indicator: deliverable_share\n    kind: share\n"
                               f"    threshold: 47  {MARK}\n    by: 2027\n"}, where="parent.yaml"),
    # --- thresholds of the wrong sign or unit ----------------------------------------------------
    case("share-in-percent", "targets[1].threshold", "a share is a fraction: 0.47 means 47 %",
         "threshold: 0.47", f"threshold: 47  {MARK}"),
    case("cagr-in-percent", "targets[0].threshold", "a growth rate is a fraction: 0.3 means +30 %/yr",
         "threshold: 0.3", f"threshold: 30  {MARK}"),
    case("cagr-below-minus-100", "targets[0].threshold", "must be greater than -1",
         "threshold: 0.3", f"threshold: -1.5  {MARK}"),
    case("negative-count-threshold", "targets[2].threshold", "must be at least 0",
         "threshold: 10", f"threshold: -10  {MARK}"),
    case("negative-level-threshold", "targets[2].threshold", "for a decline use a 'cagr' target",
         "kind: count_stock\n    threshold: 10", f"kind: level\n    threshold: -10  {MARK}"),
    case("volatility-in-percent", "indicators.deliverable.process.volatility", "0.1 means about ±10 %",
         "growth: 0.1, volatility: 0.1}", f"growth: 0.1, volatility: 10}}  {MARK}"),
    # --- base years with no baseline value, units that disagree --------------------------------
    case("base-year-without-baseline", "indicators.trade.start",
         "no baseline value for trade in base year 2022", "base_year: 2024", "base_year: 2022",
         "    start: baseline", f"    start: baseline  {MARK}", "{2025: 2100}", "{2023: 1500}"),
    case("baseline-unit-differs", "indicators.trade.unit", "unit '万元' differs from the baseline's '亿元'",
         "unit: 亿元", f"unit: 万元  {MARK}"),
    case("baselines-file-missing", "baselines", "baselines file not found",
         "baselines: b.csv", f"baselines: 基线.csv  {MARK}"),
    case("baselines-a-directory", "baselines", "not a regular file (a directory)",
         "baselines: b.csv", f"baselines: .  {MARK}"),
    case("baselines-a-device", "baselines", "not a regular file (a device, pipe or socket): /dev/zero",
         "baselines: b.csv", f"baselines: /dev/zero  {MARK}"),
    case("baselines-name-too-long", "baselines", "cannot open the baselines file (File name too long)",
         "baselines: b.csv", f"baselines: {'基' * 200}.csv  {MARK}"),
    case("extends-a-device", "extends", "which is not a regular file",
         "name: 武汉数字贸易测试", f"extends: /dev/zero  {MARK}\nname: 武汉数字贸易测试"),
    case("ar1-without-previous-year", "indicators.services.process", "needs 'initial_growth', or baseline values",
         "start: {value: 50, assumption: 测试假设}\n    process:",
         f"start: {{value: 50, assumption: 测试假设}}\n    process:  {MARK}", "      initial_growth: 0.1\n", ""),
    # --- years out of order ------------------------------------------------------------------------
    case("horizon-before-base-year", "horizon", "must be after base_year (2024), got 2020",
         "horizon: 2027", f"horizon: 2020  {MARK}"),
    case("target-after-horizon", "targets[2].by", "at most horizon 2027, got 2030",
         "by: 2027\nnot_modelled", f"by: 2030  {MARK}\nnot_modelled"),
    case("project-latest-before-earliest", "indicators.computing.process.projects[0].latest",
         "must be at least 2026, got 2025", "earliest: 2025, latest: 2027}",
         f"earliest: 2026, latest: 2025}}  {MARK}"),
    case("observation-before-base-year", "observations.trade.2023", "must be at least 2025",
         "{2025: 2100}", f"{{2023: 2100}}  {MARK}"),
    case("quantiles-out-of-order", "quantiles", "must be strictly increasing",
         "jumps:", f"quantiles: [0.5, 0.1, 0.9]  {MARK}\njumps:"),
    csv_case("csv-years-out-of-order", None, "trade: year 2023 comes after 2024 (line 2)",
             "indicator,year,value,unit,source\ntrade,2024,1800,亿元,公报\ntrade,2023,1500,亿元,公报\n", 3),
    # --- duplicated ids ------------------------------------------------------------------------------
    case("duplicate-target-id", "targets[1].id", "duplicate target id 't_trade' (also targets[0])",
         "  - id: t_share", f"  - id: t_trade  {MARK}"),
    case("duplicate-indicator", "indicators.parks", "duplicate key 'parks' (first defined on line",
         "  computing:", f"  parks:  {MARK}"),
    case("not-modelled-duplicates-target", "not_modelled[0].id", "target 't_parks' is listed twice",
         "{id: t_delivery,", "{id: t_parks,", "source: 第三条}", f"source: 第三条}}  {MARK}"),
    csv_case("csv-duplicate-row", None, "trade 2024 appears twice (also line 2)",
             "indicator,year,value,unit,source\ntrade,2024,1800,亿元,公报\ntrade,2024,1900,亿元,年鉴\n", 3),
    # --- correlation matrices ----------------------------------------------------------------------
    case("correlations-not-psd", "correlations", "not positive semi-definite",
         "correlations:\n  - [trade, services, 0.3]",
         f"correlations:  {MARK}\n  - [trade, services, 0.9]\n  - [trade, deliverable, 0.9]\n"
         "  - [services, deliverable, -0.9]"),
    case("correlations-asymmetric", "correlations[1]", "given twice with different values",
         "  - [trade, services, 0.3]", f"  - [trade, services, 0.3]\n  - [services, trade, 0.4]  {MARK}"),
    case("correlation-above-one", "correlations[0][2]", "must be at most 1",
         "  - [trade, services, 0.3]", f"  - [trade, services, 1.5]  {MARK}"),
    # --- NaN, infinity, negative values where impossible -----------------------------------------
    case("volatility-nan", "indicators.services.process.volatility", "must be a finite number, got nan",
         "volatility: 0.05", f"volatility: .nan  {MARK}"),
    case("threshold-infinite", "targets[2].threshold", "must be a finite number, got inf",
         "threshold: 10", f"threshold: .inf  {MARK}"),
    case("start-negative", "indicators.services.start.value", "must be at least 0, got -50",
         "start: {value: 50, assumption: 测试假设}", f"start: {{value: -50, assumption: 测试假设}}  {MARK}"),
    case("growth-below-minus-100", "indicators.trade.process.growth.mean", "must be greater than -1",
         "growth: {mean: 0.27, sd: 0.1}", "growth: {mean: -1.5, sd: 0.1}", "volatility: 0.1}\n    parameters",
         f"volatility: 0.1}}  {MARK}\n    parameters"),
    case("probability-above-one", "indicators.computing.process.projects[0].probability",
         "must be at most 1, got 1.5", "probability: 0.7, earliest: 2025, latest: 2027}",
         f"probability: 1.5, earliest: 2025, latest: 2027}}  {MARK}"),
    case("count-mean-negative", "indicators.parks.process.additions.mean", "must be at least 0",
         "mean: 2}}", f"mean: -2}}}}  {MARK}"),
    csv_case("csv-value-nan", "value", "must be a finite number, got 'nan'",
             "indicator,year,value,unit,source\ntrade,2024,nan,亿元,公报\n", 2),
    case("csv-value-negative-start", "indicators.trade.start",
         "needs a positive start value, got -1800 (the baseline value in", files={
             "b.csv": "indicator,year,value,unit,source\ntrade,2024,-1800,亿元,公报\n"},
         where="scenario.yaml", line=12),
    csv_case("csv-value-with-separator", "value", "write it without thousands separators: 1800",
             'indicator,year,value,unit,source\ntrade,2024,"1,800",亿元,公报\n', 2),
    csv_case("csv-no-source", "source", "a value needs a source, or an assumption",
             "indicator,year,value,unit,source\ntrade,2024,1800,亿元,\n", 2),
    # --- numbers that overflow or underflow floating point ---------------------------------------
    case("overflow-long-horizon", "indicators.deliverable.process", "beyond 1e250",
         "horizon: 2027", "horizon: 2124", "{value: 20, source: 统计年鉴}", "{value: 1.0e+150, source: 统计年鉴}",
         "{kind: lognormal, growth: 0.1, volatility: 0.1}",
         f"{{kind: lognormal, growth: 9.0, volatility: 1.0}}  {MARK}"),
    case("underflow-tiny-start", "indicators.deliverable.process", "below 1e-250",
         "{value: 20, source: 统计年鉴}", "{value: 1.0e-300, source: 统计年鉴}",
         "{kind: lognormal, growth: 0.1, volatility: 0.1}", f"{{kind: lognormal, growth: 0.1, volatility: 0.1}}  {MARK}"),
    # --- empty files -------------------------------------------------------------------------------
    case("empty-scenario", None, "the file is empty", files={"scenario.yaml": ""}, line=1),
    case("comments-only-scenario", None, "the file is empty", files={"scenario.yaml": "# 情景\n# 待填写\n"}, line=1),
    case("scalar-scenario", None, "expected a mapping, got the string '武汉'", files={"scenario.yaml": "武汉\n"},
         line=1),
    csv_case("empty-csv", None, "the file is empty", "", 1),
    csv_case("csv-header-misspelt", None, "missing column(s) value (did you mean 'valeu' for 'value'?)",
             "indicator,year,valeu,unit,source\ntrade,2024,1800,亿元,公报\n", 1),
    case("empty-parent", None, "the file is empty", "name: 武汉数字贸易测试",
         "extends: parent.yaml\nname: 武汉数字贸易测试", files={"parent.yaml": "# nothing yet\n"},
         where="parent.yaml", line=1),
    # --- hostile YAML ------------------------------------------------------------------------------
    # 9 nested aliases: 'f' (line 6) is the first key whose expansion passes the node budget
    case("alias-bomb", "f", "alias bomb", files={"scenario.yaml": BILLION_LAUGHS}, line=6, subprocess=True),
    case("python-tag", "", "could not determine a constructor for the tag",
         "name: 武汉数字贸易测试", f"name: !!python/object/apply:os.system ['echo 被执行']  {MARK}"),
    case("deep-nesting", None, "nested more than 64 levels deep",
         files={"scenario.yaml": "a: " + "[" * 100 + "]" * 100 + "\n"}, line=1),
    case("tab-indentation", None, "found character '\\t' that cannot start any token",
         "    unit: 个", f"\tunit: 个  {MARK}"),
    # --- enormous path counts ------------------------------------------------------------------------
    case("paths-enormous", "paths", "must be at most 10000000000", "paths: 2000",
         f"paths: 100000000000000000000  {MARK}"),
    case("paths-exponent-as-text", "paths", "YAML reads '1e12' as text", "paths: 2000", f"paths: 1e12  {MARK}"),
    case("paths-option-enormous", None, "Invalid value for '--paths'", args=("--paths", str(10**12)), line=0),
    # --- Chinese text and input-method slips -------------------------------------------------------
    case("chinese-indicator-id", "indicators.数字贸易", "an indicator id must start with a letter",
         "  parks:", f"  数字贸易:  {MARK}", "indicator: parks", "indicator: 数字贸易"),
    case("full-width-colon", None, "full-width '：' where YAML needs ':'",
         "description: 《", "description：《", line=3, subprocess=True),
    case("gbk-encoded-scenario", None, "it looks like GBK/GB18030", files={
        "scenario.yaml": GOOD.encode("gbk")}, line=1, subprocess=True),
    csv_case("gbk-encoded-csv", None, "it looks like GBK/GB18030", CSV.encode("gbk"), 2),
    case("chinese-target-kind", "targets[2].kind", "unknown target kind '存量'",
         "kind: count_stock", f"kind: 存量  {MARK}"),
]


def run_cli(tmp_path: Path, c: Case) -> tuple[int, str, Path]:
    for name, content in c.files.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    out_dir = tmp_path / "out"
    args = ["run", str(tmp_path / "scenario.yaml"), "-o", str(out_dir / "result.nc"), "--quiet", *c.args]
    if c.subprocess:
        proc = subprocess.run([sys.executable, "-m", "targetsim.cli", *args], capture_output=True, text=True,
                              cwd=tmp_path, timeout=120)
        return proc.returncode, proc.stdout + proc.stderr, out_dir
    result = CliRunner().invoke(main, args)
    # anything but a clean exit is an exception the command did not handle: a bug, not a message
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.output, out_dir


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


def test_the_good_scenario_runs(tmp_path):
    c = case("good", None, "")
    code, output, out_dir = run_cli(tmp_path, c)
    assert code == 0, output
    assert (out_dir / "result.nc").is_file()


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_bad_input(tmp_path, c: Case):
    code, output, out_dir = run_cli(tmp_path, c)
    assert code != 0, output
    assert "Traceback" not in output, output
    assert not out_dir.exists() or not any(out_dir.iterdir()), output
    assert c.words in output, output
    if c.line == 0:  # a command-line option, not a file
        return
    line = c.expected_line()
    prefix = f"{tmp_path / c.where}:{line}: "
    assert prefix in output, output
    if c.key:
        assert f"{prefix}{c.key}: " in output, output
