"""Command line: ``targetsim run``, ``validate``, ``catalog``, ``baselines``, ``fit``, ``backtest``, ``goal``,
``export``, ``compare``, ``report``, ``plot``, and the commands of many runs: ``sweep``, ``sensitivity`` and
``discover``.
Each command is a few lines over the API."""

from __future__ import annotations

import os
import signal
import sys
import time
import warnings
from contextlib import contextmanager, nullcontext
from pathlib import Path

import click

from targetsim.errors import TargetsimError, TargetsimWarning

# The limits of --paths and --seed (targetsim.model.parse.MAX_PATHS and the largest int64 seed;
# written out here so that the command line starts without importing numpy).
MAX_PATHS = 10**10
MAX_SEED = 2**63 - 1
COMPILING_NOTICE = ("compiling the simulation kernels (the first run after installing or upgrading "
                    "takes about half a minute more; later runs load them from the cache)")


@contextmanager
def user_errors(debug: bool):
    """Turn user errors into one red line on stderr and exit code 1 (``--debug``: traceback)."""
    try:
        yield
    except TargetsimError as exc:
        if debug:
            raise
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(1)


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like ``KeyboardInterrupt`` for SIGINT, so that an atomic
    write in progress removes its temporary file on the way out."""


EXIT_SIGINT = 128 + signal.SIGINT    # 130, as shells report a process ended by Ctrl-C
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143


@contextmanager
def interruptible(out: Path):
    """Ctrl-C (SIGINT) and SIGTERM end a run with one line and exit status 130 or 143, never a
    traceback; whatever was being written is removed by the writer (``write_dataset`` cleans up on
    any exception), so ``out`` is either the previous file, untouched, or the complete new one."""
    try:
        existed = out.is_file()
    except OSError:
        existed = False

    def on_sigterm(signum, frame):
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        yield
    except (KeyboardInterrupt, Terminated) as exc:
        kept = f"{out} is unchanged" if existed else f"nothing was written to {out}"
        what = "interrupted" if isinstance(exc, KeyboardInterrupt) else "terminated"
        click.secho(f"{what}: {kept}", fg="red", err=True)
        sys.exit(EXIT_SIGINT if isinstance(exc, KeyboardInterrupt) else EXIT_SIGTERM)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


# The results table's options (issue 18), for `run` and any command that prints the table.
TABLE_FORMATS = ("table", "csv", "json", "markdown")


def table_options(command):
    """``--sort plan|risk``, ``--only all|at-risk`` and ``--format table|csv|json|markdown``."""
    command = click.option("--format", "table_format", type=click.Choice(TABLE_FORMATS), default="table",
                           show_default=True,
                           help="How to print the targets: a table for people, or csv, json or markdown for other "
                                "tools (every row in full, no markup; other messages go to stderr).")(command)
    command = click.option("--only", type=click.Choice(("all", "at-risk")), default="all", show_default=True,
                           help="at-risk: only the targets with P(met) below 80 % (at risk 50-80 %, off track "
                                "below 50 %).")(command)
    return click.option("--sort", type=click.Choice(("plan", "risk")), default="plan", show_default=True,
                        help="Row order: the plan's, or risk (lowest P(met) first).")(command)


def print_table(ds, table_format: str, sort: str, only: str) -> None:
    """The results table in the chosen format, on stdout."""
    from targetsim.report.table import format_results, print_results

    if table_format == "table":
        print_results(ds, sort=sort, only=only)
    else:
        click.echo(format_results(ds, table_format, sort=sort, only=only), nl=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="targetsim")
def main() -> None:
    """Monte Carlo attainment probabilities for the numeric targets of city plans."""


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="NetCDF file to write [default: results/<scenario stem>.nc].")
@click.option("--paths", type=click.IntRange(min=1, max=MAX_PATHS), default=None,
              help="Number of paths (overrides the scenario).")
@click.option("--seed", type=click.IntRange(min=0, max=MAX_SEED), default=None,
              help="Random seed (overrides the scenario).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Worker threads [default: all cores].")
@click.option("--precision", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Instead of --paths: add paths (2^14, doubled, ...) until every target's standard error is at "
                   "most this (e.g. 0.001), deterministically.")
@click.option("--max-paths", type=click.IntRange(min=1, max=MAX_PATHS), default=None,
              help="Cap of a --precision run [default: 100,000,000]; the output says when it stopped there.")
@click.option("--keep-paths", type=click.IntRange(min=0, max=MAX_PATHS), default=0, show_default=True,
              help="Store the outcomes and drawn inputs of the first N paths (kept_* variables).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Run the paths as tasks on a running Dask scheduler, e.g. tcp://10.0.0.5:8786 "
                   "(needs the dask extra).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Run the paths as tasks on a local Dask cluster of N worker processes (needs the dask extra).")
@click.option("--task-paths", type=click.IntRange(min=256), default=None,
              help="Paths per Dask task [default: chosen from the measured per-task overhead].")
@click.option("--quiet", is_flag=True, help="No table and no progress bar.")
@table_options
@click.option("--debug", is_flag=True, help="Show tracebacks for user errors.")
def run(scenario: Path, output: Path | None, paths: int | None, seed: int | None,
        threads: int | None, quiet: bool, debug: bool, sort: str = "plan", only: str = "all",
        table_format: str = "table", precision: float | None = None, max_paths: int | None = None,
        keep_paths: int = 0, scheduler: str | None = None, workers: int | None = None,
        task_paths: int | None = None) -> None:
    """Simulate SCENARIO and write its attainment dataset.

    Everything that can be refused is checked before simulating (the scenario, the destination and
    its free space, memory). Interrupted (Ctrl-C: exit 130, SIGTERM: exit 143), it writes nothing and
    leaves an existing OUT as it was.

    With --scheduler or --workers the paths run as Dask tasks (bit-identical to a local run with the same
    seed); --precision chooses the paths; --keep-paths stores the first N paths. See the README's
    "Distributed runs and precision"."""
    from targetsim.api import preflight
    from targetsim.api import run as run_scenario
    from dataclasses import replace

    from targetsim.engine.simulate import DEFAULT_MAX_PATHS, on_first_compile
    from targetsim.io.netcdf import write_dataset
    from targetsim.io.scenarios import load_scenario
    from targetsim.report.table import ProgressBar

    out = output or Path("results") / f"{scenario.stem}.nc"
    with user_errors(debug), interruptible(out):
        loaded = load_scenario(scenario)
        estimate = preflight(loaded, paths=paths if precision is None else (max_paths or DEFAULT_MAX_PATHS),
                             seed=seed, threads=threads, output=out, keep_paths=keep_paths,
                             distributed=scheduler is not None or workers is not None)
        if precision is not None:  # the paths are not known: say nothing about the duration
            estimate = replace(estimate, seconds=0.0)
        if estimate.is_long() and not quiet:
            click.echo(estimate.long_run_notice(), err=True)
        started = time.perf_counter()
        compiling = on_first_compile(lambda: click.echo(COMPILING_NOTICE, err=True)) if not quiet else nullcontext()
        with compiling, ProgressBar(enabled=not quiet) as bar, warnings.catch_warnings():
            warnings.simplefilter("ignore", TargetsimWarning)  # printed below from the dataset
            ds = run_scenario(loaded, paths=paths, seed=seed, threads=threads, progress=bar.update,
                              checked=estimate, precision=precision, max_paths=max_paths, keep_paths=keep_paths,
                              scheduler=scheduler, workers=workers, task_paths=task_paths)
        write_dataset(ds, out)
        for note in filter(None, ds.attrs.get("warnings", "").split("\n")):
            click.secho(f"warning: {note}", fg="yellow", err=True)
        elapsed = time.perf_counter() - started
        if not quiet:
            print_table(ds, table_format, sort, only)
        click.echo(f"wrote {out} ({ds.attrs['paths']:,} paths, seed {ds.attrs['seed']}, {elapsed:.2f} s)",
                   err=quiet or table_format != "table")


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--show-merged", is_flag=True,
              help="Also print the scenario as YAML after merging its 'extends' chain.")
@click.option("--debug", is_flag=True, help="Show tracebacks for user errors.")
def validate(scenario: Path, show_merged: bool, debug: bool) -> None:
    """Check SCENARIO (and its baselines) without running it."""
    from targetsim.io.models import load_document
    from targetsim.io.scenarios import load_scenario

    with user_errors(debug):
        sc = load_scenario(scenario)
        merged = load_document(scenario).merged.data if show_merged else None
    assumed = [ind.id for ind in sc.indicators if ind.start is not None and ind.start.is_assumption]
    assumed_parameters = [ind.id for ind in sc.indicators if ind.start is not None and ind.parameters.is_assumption]
    not_modelled = f", {len(sc.not_modelled)} not modelled" if sc.not_modelled else ""
    click.echo(f"ok: {scenario}: '{sc.name}', {len(sc.indicators)} indicators, {len(sc.targets)} targets"
               f"{not_modelled}, {sc.base_year}–{sc.horizon}, {sc.paths:,} paths, seed {sc.seed}")
    if assumed:
        click.echo(f"start values resting on assumptions: {', '.join(assumed)}")
    if assumed_parameters:
        click.echo(f"parameters resting on assumptions: {', '.join(assumed_parameters)}")
    for ind in sc.indicators:
        if ind.fitted is not None:
            click.echo(f"fitted {ind.id}: {ind.fitted.describe()}")
            for name, value, se in ind.fitted.estimates:
                click.echo(f"  {name:<14} {value:>12.6g}" + (f"   s.e. {se:.4g}" if se == se else ""))
    if show_merged:
        import yaml

        click.echo("--- # merged scenario")
        click.echo(yaml.safe_dump(merged, allow_unicode=True, sort_keys=False), nl=False)


def project_path(relative: str, *, start: Path | None = None) -> Path | None:
    """``relative`` (a file or folder of the targetsim project, e.g. ``scenarios/catalog.csv``) found
    from ``start`` (default: the current folder) or one of its parents, else in the source checkout
    this package runs from; None when none has it."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents, Path(__file__).resolve().parents[1]):
        if (folder / relative).exists():
            return folder / relative
    return None


def _located(given: Path | None, relative: str, option: str) -> Path:
    """The path the user gave, or the project's ``relative`` found from here (see :func:`project_path`)."""
    if given is not None:
        return given
    found = project_path(relative)
    if found is None:
        raise TargetsimError(f"no {relative} in {Path.cwd()}, its parent folders or the targetsim checkout; "
                             f"run from the project folder or pass {option}")
    return found


@main.command()
@click.option("--catalog", "catalog_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The target catalog [default: scenarios/catalog.csv of the project, found from here].")
@click.option("--scenarios", "folder", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of scenario files [default: the catalog's folder].")
@click.option("--plan", default=None, help="Only targets whose plan title or id contains this text.")
@click.option("--debug", is_flag=True, help="Show tracebacks for user errors.")
def catalog(catalog_file: Path | None, folder: Path | None, plan: str | None, debug: bool) -> None:
    """List the catalog's targets, the scenario that models each, and which rest on assumptions."""
    from targetsim.report.catalog import catalog_rows
    from targetsim.report.table import print_catalog

    with user_errors(debug):
        catalog_file = _located(catalog_file, "scenarios/catalog.csv", "--catalog PATH")
        rows = catalog_rows(catalog_file, folder if folder is not None else catalog_file.parent)
    if plan:
        rows = [r for r in rows if plan in r.plan or plan in r.target_id]
    print_catalog(rows)


@main.command()
@click.argument("indicator", required=False)
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of baseline CSV files [default: the project's baselines/, found from here].")
@click.option("--scenario", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Use the folder of this scenario's baselines file.")
@click.option("--debug", is_flag=True, help="Show tracebacks for user errors.")
def baselines(indicator: str | None, folder: Path | None, scenario: Path | None, debug: bool) -> None:
    """Show INDICATOR's history with sources and assumptions (no INDICATOR: list the indicators)."""
    from targetsim.report.catalog import baseline_files, baseline_rows
    from targetsim.report.table import print_baseline_history, print_baseline_summary

    with user_errors(debug):
        if folder is None and scenario is not None:
            from targetsim.io.scenarios import load_scenario

            loaded = load_scenario(scenario)
            if loaded.baselines is None:
                raise TargetsimError(f"{scenario} names no baselines file; pass --dir FOLDER")
            folder = loaded.baselines.parent
        folder = _located(folder, "baselines", "--dir FOLDER or --scenario FILE")
        rows = baseline_rows(baseline_files(folder), indicator)
    if indicator is None:
        print_baseline_summary(rows)
    else:
        print_baseline_history(indicator, rows)


FIT_PROCESSES = ("auto", "lognormal", "ar1_growth", "logit_share", "count")


@main.command()
@click.argument("baseline", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--indicator", "indicators", multiple=True, required=True,
              help="Indicator id in BASELINE; repeat it to fit (or pool) several.")
@click.option("--process", type=click.Choice(FIT_PROCESSES), default="auto", show_default=True,
              help="Process kind; auto: the lowest AICc among the kinds that suit the unit.")
@click.option("--until", type=click.IntRange(1900, 2200), default=None,
              help="Fit on the rows up to this year only.")
@click.option("--break", "breaks", type=click.IntRange(1900, 2200), multiple=True,
              help="A year whose change from the previous value is a one-off level shift (a change of "
                   "statistical scope): left out. Repeatable.")
@click.option("--pool", is_flag=True, help="Partially pool the volatilities of the indicators given.")
@click.option("--pool-growth", is_flag=True, help="Also pool their growth rates (implies --pool).")
@click.option("--write", "scenario", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the fitted process and parameters into this scenario file, in place, keeping its "
                   "comments.")
@click.option("--debug", is_flag=True, help="Show tracebacks for user errors.")
def fit(baseline: Path, indicators: tuple[str, ...], process: str, until: int | None, breaks: tuple[int, ...],
        pool: bool, pool_growth: bool, scenario: Path | None, debug: bool) -> None:
    """Estimate a process for each --indicator from the observed rows of BASELINE (a baselines CSV).

    Prints the estimates with their standard errors, the AICc of each candidate, the points used and
    a ready-to-paste YAML block whose parameter uncertainty makes the engine's probabilities
    calibrated."""
    from targetsim.api import fit_baselines, write_fit

    with user_errors(debug):
        fits, pooled = fit_baselines(baseline, indicators, process=process, until=until, breaks=breaks,
                                     pool=pool, pool_growth=pool_growth)
        for f in fits:
            click.echo(f.summary())
            click.echo()
            click.echo(f"  # {f.indicator}: paste under indicators.{f.indicator}")
            click.echo("".join(f"  {line}\n" for line in f.to_yaml().splitlines()))
        if pooled is not None:
            click.echo(pooled.summary())
        if scenario is not None:
            for f in fits:
                write_fit(scenario, f)
                click.echo(f"wrote {f.indicator}'s process and parameters into {scenario}")


@main.command()
@click.argument("baseline_files", metavar="BASELINE...", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--indicator", "indicators", multiple=True,
              help="Indicator id (repeatable) [default: every one with enough observed values].")
@click.option("--horizon", type=click.IntRange(1, 30), default=3, show_default=True,
              help="Years ahead of each origin.")
@click.option("--process", type=click.Choice(FIT_PROCESSES), default="auto", show_default=True,
              help="Process kind fitted at each origin (auto: by AICc).")
@click.option("--paths", type=click.IntRange(min=1000, max=MAX_PATHS), default=20_000, show_default=True,
              help="Simulated paths per origin.")
@click.option("--seed", type=click.IntRange(min=0, max=MAX_SEED), default=0, show_default=True,
              help="Random seed of every origin's run.")
@click.option("--min-points", type=click.IntRange(2, 100), default=3, show_default=True,
              help="The fewest observed points at an origin to fit from.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="NetCDF file for the cases [default: results/backtest_<first file>.nc].")
@click.option("--debug", is_flag=True, help="Show tracebacks for user errors.")
def backtest(baseline_files: tuple[Path, ...], indicators: tuple[str, ...], horizon: int, process: str, paths: int,
             seed: int, min_points: int, output: Path | None, debug: bool) -> None:
    """Rolling-origin backtest of the histories in one or more baselines files: fit up to each
    origin, simulate HORIZON years with the engine, score against what happened (coverage, CRPS,
    PIT, Brier) beside a plug-in random walk with drift."""
    from targetsim.backtest import backtest as run_backtest
    from targetsim.backtest import pit_histogram_text, summary_table
    from targetsim.io.netcdf import write_dataset

    out = output or Path("results") / f"backtest_{baseline_files[0].stem}.nc"
    with user_errors(debug):
        ds = run_backtest(baseline_files, indicators or None, horizon=horizon, process=process, paths=paths,
                          seed=seed, min_points=min_points,
                          progress=lambda what: click.echo(f"  fitting and simulating {what}", err=True))
        out.parent.mkdir(parents=True, exist_ok=True)
        write_dataset(ds, out)
    click.echo(summary_table(ds))
    click.echo(pit_histogram_text(ds))
    if ds.attrs.get("skipped"):
        click.echo("skipped origins (the engine refused them):\n  " + ds.attrs["skipped"].replace("\n", "\n  "))
    click.echo(f"wrote {out} ({ds.sizes['case']} cases)")


@main.command()
@click.argument("results", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="An Excel workbook (.xlsx: summary, by year, quantiles, joint, README sheets) or the summary "
                   "table as .csv (UTF-8 with BOM) [default: RESULTS with .xlsx].")
@click.option("--debug", is_flag=True, help="Show tracebacks for user errors.")
def export(results: Path, output: Path | None, debug: bool) -> None:
    """Export a results file (RESULTS.nc) for planners: an Excel workbook or the summary as CSV."""
    from targetsim.report.export import export_format, export_results, require_openpyxl
    from targetsim.report.results_file import load_results

    out = output or results.with_suffix(".xlsx")
    with user_errors(debug), interruptible(out):
        if export_format(out) == "xlsx":
            require_openpyxl()  # before reading anything
        ds = load_results(results)
        export_results(ds, out, results_file=results)
    what = "workbook" if export_format(out) == "xlsx" else "summary table (CSV, UTF-8 with BOM)"
    click.echo(f"wrote {out}: {what} of {ds.sizes['target']} targets from {results}")


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--target", "target_id", required=True, help="The target's id.")
@click.option("--probability", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), required=True,
              help="The probability the target should be met with (0.8 = 80 %).")
@click.option("--lever", type=click.Choice(("growth", "start", "project")), default="growth", show_default=True,
              help="What to move: the growth mean of the target's indicator (a count: its additions' mean; "
                   "scheduled: the delivery probability; a share: the logit's drift), its start value, or a "
                   "buildout's project completion probabilities (all scaled together).")
@click.option("--indicator", default=None,
              help="For a ratio or sum target: the part to move [default: a ratio's numerator].")
@click.option("--paths", type=click.IntRange(min=1000, max=MAX_PATHS), default=20_000, show_default=True,
              help="Paths of each run (the same paths every run: common random numbers).")
@click.option("--seed", type=click.IntRange(min=0, max=MAX_SEED), default=None,
              help="Random seed of every run [default: the scenario's].")
@click.option("--tolerance", type=click.FloatRange(min=0.0, min_open=True), default=1e-4, show_default=True,
              help="The root finder's tolerance on the lever's search scale (ln(1+g) for a growth).")
@click.option("--debug", is_flag=True, help="Show tracebacks for user errors.")
def goal(scenario: Path, target_id: str, probability: float, lever: str, indicator: str | None, paths: int,
         seed: int | None, tolerance: float, debug: bool) -> None:
    """What it would take: the value of a lever that gives --target the --probability, found by
    re-running SCENARIO with the same paths (common random numbers) and a bracketing root finder."""
    from targetsim.goal import goal as find_goal

    with user_errors(debug):
        result = find_goal(scenario, target_id, probability, lever, indicator=indicator, paths=paths, seed=seed,
                           tolerance=tolerance)
    click.echo("\n".join(result.describe()))


@main.command()
@click.argument("results", metavar="REFERENCE.nc OTHER.nc [MORE.nc ...]", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "table_format", type=click.Choice(TABLE_FORMATS), default="table", show_default=True,
              help="A table for people, or csv, json or markdown for other tools.")
@click.option("--debug", is_flag=True, help="Show tracebacks for user errors.")
def compare(results: tuple[Path, ...], table_format: str, debug: bool) -> None:
    """How each run's attainment probabilities differ from the first's (REFERENCE), target by target,
    with 95 % intervals: paired over the kept paths when the runs share a seed (common random numbers;
    run both with --keep-paths), independent when their seeds differ."""
    from targetsim.report.compare import compare_files, format_comparisons, print_comparisons

    with user_errors(debug):
        comparisons = compare_files(list(results))
    if table_format == "table":
        print_comparisons(comparisons)
    else:
        click.echo(format_comparisons(comparisons, table_format), nl=False)


@contextmanager
def _printed_warnings():
    """Warnings raised inside (e.g. no CJK font for the figures) printed once each as a yellow line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TargetsimWarning)
        yield
    for message in dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, TargetsimWarning)):
        click.secho(f"warning: {message}", fg="yellow", err=True)


@main.command()
@click.argument("results", metavar="RESULTS.nc [MORE.nc ...]", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="HTML file to write [default: the first results file with .html].")
@click.option("--goals/--no-goals", default=True, show_default=True,
              help="What it would take: for every target below 80 %, the growth that gives it 50 % and 80 % "
                   "(re-runs the scenario the results file names, if it is unchanged).")
@click.option("--goal-paths", type=click.IntRange(min=1000, max=MAX_PATHS), default=20_000, show_default=True,
              help="Paths of each run of the goal searches.")
@click.option("--sensitivity", "sensitivity", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A file `targetsim sensitivity` wrote: what drives each target (Sobol indices, tornado), shown "
                   "with the results file of the same scenario.")
@click.option("--debug", is_flag=True, help="Show tracebacks for user errors.")
def report(results: tuple[Path, ...], output: Path | None, goals: bool, goal_paths: int,
           sensitivity: Path | None, debug: bool) -> None:
    """Write one self-contained HTML report (tables, fan charts, what it would take, sources, provenance)
    of RESULTS.

    Several results files: each file's differences from the first, each scenario's tables and the fans
    of the indicators they share, overlaid. Needs the report extra: pip install 'targetsim[report]'."""
    from targetsim.report.figures import require_matplotlib
    from targetsim.report.html import write_report
    from targetsim.report.results_file import load_results

    out = output or results[0].with_suffix(".html")
    with user_errors(debug), _printed_warnings():
        require_matplotlib()  # before any goal search
        found = None
        if goals:
            from targetsim.goal import goals_for_results

            found = []
            for path in results:
                run_goals = goals_for_results(load_results(path), path, paths=goal_paths,
                                              progress=lambda line: click.echo(f"  {line}", err=True))
                if run_goals.note:
                    click.secho(f"warning: {path}: what it would take not computed: {run_goals.note}", fg="yellow",
                                err=True)
                found.append(run_goals)
        write_report(list(results), out, goals=found, sensitivity=sensitivity)
    click.echo(f"wrote {out} ({out.stat().st_size / 1024:,.0f} KiB)")


@main.command()
@click.argument("results", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--indicator", required=True, help="Indicator id (see the dataset's `indicator` coordinate).")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Figure file: .png, .svg or .pdf.")
@click.option("--debug", is_flag=True, help="Show tracebacks for user errors.")
def plot(results: Path, indicator: str, output: Path, debug: bool) -> None:
    """Write one fan chart of INDICATOR from RESULTS (median, 50 % and 90 % bands, observed history,
    thresholds), for a slide. Needs the report extra: pip install 'targetsim[report]'."""
    from targetsim.report.figures import plot_indicator

    with user_errors(debug), _printed_warnings():
        plot_indicator(results, indicator, output)
    click.echo(f"wrote {output}")


# --- many runs of one scenario (issue 19): sweep, sensitivity, discover ------------------------------------

def distribution_options(command):
    """``--threads``, ``--scheduler`` and ``--workers``: where the runs of a sweep or sensitivity go."""
    command = click.option("--batch", type=click.IntRange(min=1), default=None,
                           help="Variants per Dask task [default: 1, see benches/sweep.py].")(command)
    command = click.option("--workers", type=click.IntRange(min=1), default=None,
                           help="Run on a local Dask cluster of N worker processes (needs the dask extra).")(command)
    command = click.option("--scheduler", default=None, metavar="ADDRESS",
                           help="Run on a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (needs the dask "
                                "extra).")(command)
    return click.option("--threads", type=click.IntRange(min=1), default=None,
                        help="Run N variants at a time in threads of this process, one engine thread each "
                             "[default: one at a time, on all the engine's threads].")(command)


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--vary", "varies", multiple=True, required=True, metavar="KEY=SPEC",
              help="A dotted key of the scenario (as a variant's overrides spell it, e.g. "
                   "indicators.wuhan_cbec_trade.process.growth.mean) and its values: 0.1,0.2,0.3; low:high:count; "
                   "or low..high with --samples. Repeatable: a grid's keys combine.")
@click.option("--samples", type=click.IntRange(min=1), default=None,
              help="A Latin hypercube of N variants over the low..high ranges.")
@click.option("--paths", type=click.IntRange(min=1, max=MAX_PATHS), default=None,
              help="Paths of every variant [default: 20,000].")
@click.option("--seed", type=click.IntRange(min=0, max=MAX_SEED), default=None,
              help="Seed of every variant (common random numbers) and of the Latin hypercube [default: the "
                   "scenario's].")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="NetCDF file to write [default: results/<scenario stem>_sweep.nc].")
@distribution_options
@click.option("--quiet", is_flag=True, help="No line per variant.")
@click.option("--debug", is_flag=True, help="Show tracebacks for user errors.")
def sweep(scenario: Path, varies: tuple[str, ...], samples: int | None, paths: int | None, seed: int | None,
          output: Path | None, threads: int | None, scheduler: str | None, workers: int | None, batch: int | None,
          quiet: bool, debug: bool) -> None:
    """Run SCENARIO once per variant (every --vary combination, or a Latin hypercube) with the same seed and
    paths, and write one dataset with a 'variant' dimension."""
    from targetsim.explore.sweep import parse_vary
    from targetsim.explore.sweep import sweep as run_sweep
    from targetsim.io.netcdf import check_writable, write_dataset

    out = output or Path("results") / f"{scenario.stem}_sweep.nc"
    with user_errors(debug), interruptible(out):
        check_writable(out)
        vary = [parse_vary(v) for v in varies]
        started = time.perf_counter()

        def progress(done: int, total: int, index: int, result) -> None:
            if quiet:
                return
            p = float(result.arrays["joint_attainment_probability"])
            click.echo(f"variant {done}/{total} (#{index}) done: P(all met) {p:.1%}, {result.seconds:.2f} s", err=True)

        ds = run_sweep(scenario, vary, samples=samples, seed=seed, paths=paths, threads=threads,
                       scheduler=scheduler, workers=workers, batch=batch, progress=progress)
        write_dataset(ds, out)
        warned = sum(1 for w in ds["variant_warnings"].values if w)
        if warned:
            click.secho(f"warning: {warned} variants have warnings (variable variant_warnings)", fg="yellow", err=True)
    click.echo(f"wrote {out}: {ds.sizes['variant']} variants × {ds.attrs['paths']:,} paths, seed {ds.attrs['seed']} "
               f"(common random numbers), {ds.attrs['executed']}, {time.perf_counter() - started:.1f} s")


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--inputs", "inputs", multiple=True, metavar="KEY[=LO..HI]",
              help="An input to vary (repeatable) [default: every declared uncertain input: growth means and "
                   "s.d.s, volatilities, uncertain starts, project probabilities, correlations].")
@click.option("--samples", type=click.IntRange(min=2), default=64, show_default=True,
              help="Sobol base samples N (N·(inputs+2) runs; a power of 2).")
@click.option("--paths", type=click.IntRange(min=1, max=MAX_PATHS), default=None,
              help="Paths of every run [default: 10,000].")
@click.option("--seed", type=click.IntRange(min=0, max=MAX_SEED), default=None,
              help="Seed of every run and of the Sobol sample [default: the scenario's].")
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True, help="Inputs shown per target.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="NetCDF file to write [default: results/<scenario stem>_sensitivity.nc].")
@distribution_options
@click.option("--debug", is_flag=True, help="Show tracebacks for user errors.")
def sensitivity(scenario: Path, inputs: tuple[str, ...], samples: int, paths: int | None, seed: int | None,
                top: int, output: Path | None, threads: int | None, scheduler: str | None, workers: int | None,
                batch: int | None, debug: bool) -> None:
    """Which uncertain inputs of SCENARIO drive each target's probability and the joint one: Sobol
    first-order and total indices with intervals (SALib) and a tornado table. Needs the sensitivity
    extra: pip install 'targetsim[sensitivity]'."""
    from targetsim.explore.sensitivity import format_sensitivity
    from targetsim.explore.sensitivity import sensitivity as run_sensitivity
    from targetsim.io.netcdf import check_writable, write_dataset

    out = output or Path("results") / f"{scenario.stem}_sensitivity.nc"
    with user_errors(debug), interruptible(out):
        check_writable(out)
        started = time.perf_counter()
        step = [0]

        def progress(done: int, total: int) -> None:
            if done * 10 // total > step[0] or done == total:
                step[0] = done * 10 // total
                click.echo(f"runs {done}/{total}", err=True)

        ds = run_sensitivity(scenario, inputs=list(inputs) or None, samples=samples, paths=paths, seed=seed,
                             threads=threads, scheduler=scheduler, workers=workers, batch=batch, progress=progress)
        write_dataset(ds, out)
    click.echo(format_sensitivity(ds, top=top))
    click.echo(f"wrote {out}: {ds.sizes['input']} inputs, {ds.attrs['sobol_runs'] + ds.attrs['tornado_runs']} runs × "
               f"{ds.attrs['paths']:,} paths, seed {ds.attrs['seed']}, {time.perf_counter() - started:.1f} s")


@main.command()
@click.argument("sweep_file", metavar="SWEEP.nc", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--target", "target_id", required=True, help="A target id of the sweep, or joint (all targets).")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), default=0.5,
              show_default=True, help="A variant is of interest when the probability is below this.")
@click.option("--density", type=click.FloatRange(0.0, 1.0, min_open=True), default=0.8, show_default=True,
              help="The density a box must reach.")
@click.option("--boxes", type=click.IntRange(min=1), default=3, show_default=True, help="The most boxes to find.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="The boxes: .csv (a table) or .nc (with the peeling trajectories) [default: SWEEP with "
                   "_boxes_<target>.csv].")
@click.option("--debug", is_flag=True, help="Show tracebacks for user errors.")
def discover(sweep_file: Path, target_id: str, threshold: float, density: float, boxes: int, output: Path | None,
             debug: bool) -> None:
    """Scenario discovery: PRIM boxes of the inputs in which --target is mostly missed, with coverage and
    density. On a sweep (SWEEP.nc): the variants, of interest when the probability is below --threshold; on a
    run with kept paths (`targetsim run --keep-paths N`): the paths, of interest when they miss the target,
    their drawn inputs as the inputs. Needs the sensitivity extra."""
    from targetsim.explore.discover import discover as find_boxes
    from targetsim.explore.discover import format_boxes, require_prim, write_boxes
    from targetsim.io.netcdf import read_dataset

    out = output or sweep_file.with_name(f"{sweep_file.stem}_boxes_{target_id}.csv")
    with user_errors(debug), interruptible(out):
        require_prim()
        if not sweep_file.is_file():
            raise TargetsimError(f"{sweep_file}: no such file; run `targetsim sweep`, or `targetsim run ... "
                                 "--keep-paths N`, to make one")
        try:
            ds = read_dataset(sweep_file)
        except (OSError, ValueError) as exc:
            raise TargetsimError(f"{sweep_file}: cannot be read as a sweep result (NetCDF): {exc}") from None
        result = find_boxes(ds, target_id, threshold=threshold, density=density, boxes=boxes, source=str(sweep_file))
        write_boxes(result, out)
    click.echo(format_boxes(result))
    click.echo(f"wrote {out}")


def entry() -> None:
    """The ``targetsim`` console script: :func:`main`, then the process ends at once.

    By then every output is written, closed and renamed into place, and the thread pool has
    stopped; what is left of a normal interpreter exit is tearing down numba's and xarray's
    modules, about half a second (a third of a warm run). So the streams are flushed and the
    process exits directly, with :func:`main`'s exit status. An unexpected exception still ends
    the normal way, with its traceback."""
    try:
        main(prog_name="targetsim")
        status = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            status = exc.code or 0
        else:  # sys.exit("message")
            print(exc.code, file=sys.stderr)
            status = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # a reader that went away, or a closed stream
        pass
    os._exit(status)


if __name__ == "__main__":  # pragma: no cover
    entry()
