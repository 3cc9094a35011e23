"""Atomic NetCDF output: write to a temporary file beside the target, then rename.

An existing file is never truncated: until the final ``os.replace`` it stays as it was, and
an interrupted or failed write removes its temporary file.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

import xarray as xr

from targetsim.errors import OutputError
from targetsim.units import format_bytes

# netCDF4 (the Unidata C library) writes a results file about 6× faster than h5netcdf.
ENGINE = "netcdf4"


def check_writable(path: str | Path) -> Path:
    """Fail early (before any simulation) if ``path`` cannot be written; creates its folder."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a directory; give a file name such as {path / ('result' + (path.suffix or '.nc'))}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise OutputError(f"{path}: cannot write there ({exc.strerror or exc})") from None
    return path


#: Free space required on the destination's disk, as a multiple of the estimated file size
#: (the temporary file and the old one coexist until the rename; HDF5 may write more before it compacts).
DISK_SAFETY_FACTOR = 2.0


def check_destination(path: str | Path, needed_bytes: int) -> Path:
    """:func:`check_writable`, and enough free space for a results file of about ``needed_bytes``
    (× :data:`DISK_SAFETY_FACTOR`) on the destination's disk, both before any simulation."""
    path = check_writable(path)
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return path  # cannot be told: the write itself reports a full disk
    wanted = int(needed_bytes * DISK_SAFETY_FACTOR)
    if free < wanted:
        raise OutputError(f"{path}: not enough disk space: the results file needs about "
                          f"{format_bytes(needed_bytes)} ({format_bytes(wanted)} with a margin for the "
                          f"temporary copy) but only {format_bytes(free)} is free in {path.parent}; free some "
                          "space or write elsewhere with -o")
    return path


def _file_mode(path: Path) -> int:
    """The permissions the result should have: those of the file it replaces, else what a plain
    ``open()`` would give (0666 less the umask), not the 0600 of a temporary file."""
    try:
        if path.is_file() and not path.is_symlink():
            return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        pass
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """The one way targetsim writes a file: ``write(tmp)`` fills a temporary file beside ``path``, which is
    flushed to disk, given the permissions the replaced file had (else a plain ``open()``'s), and renamed
    into place; on any failure (Ctrl-C too) the temporary file is removed and the old file is untouched."""
    path = check_writable(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    except BaseException as exc:  # also KeyboardInterrupt: never leave a partial file behind
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError(f"{path}: writing failed ({exc.strerror or exc})") from exc
        raise
    return path


def write_dataset(ds: xr.Dataset, path: str | Path) -> Path:
    """Write ``ds`` to ``path`` as NetCDF-4 atomically."""
    return atomic_write(path, lambda tmp: ds.to_netcdf(tmp, engine=ENGINE))


def read_dataset(path: str | Path) -> xr.Dataset:
    """Open a results file fully into memory (the file is closed on return)."""
    with xr.open_dataset(path, engine=ENGINE) as ds:
        return ds.load()


def locate_recorded_file(name: str | Path, results_file: str | Path | None = None) -> Path | None:
    """A file a results file names (its scenario, model or baselines file), as the run wrote it: relative to
    the folder the run ran in. Tried as written (from the current folder), then from the results file's
    folder and each of its parents; None when not found."""
    path = Path(name)
    if path.is_absolute():
        return path if path.is_file() else None
    bases = [Path.cwd()]
    if results_file is not None:
        bases += list(Path(results_file).resolve().parents)
    for base in bases:
        if (base / path).is_file():
            return base / path
    return None


def kept_paths_bytes(scenario, keep_paths: int) -> int:
    """Bytes of the kept-path variables ``kept_paths_dataset`` writes for ``keep_paths`` paths: per path the
    targets met (int8), its index and weight, six float64/int64 values per indicator (final and start value,
    growth, count mean, delivery, jumps), and per build-out project whether (int8) and when (float64) it
    completes."""
    n_i = len(scenario.indicators)
    n_t = len(scenario.targets)
    n_p = sum(len(ind.process.projects) for ind in scenario.indicators if ind.process.kind == "buildout")
    return int(keep_paths) * (n_t + n_p + 8 * (2 + 6 * n_i + n_p))


def estimate_output_bytes(scenario, keep_paths: int = 0) -> int:
    """A generous estimate of the NetCDF file's size (data, strings and HDF5 metadata), with the kept
    paths' variables (``--keep-paths``)."""
    n_i = len(scenario.indicators)
    n_t = len(scenario.targets)
    n_y = scenario.horizon - scenario.base_year + 1
    n_q = len(scenario.quantiles)
    numbers = 8 * (n_i * n_y * (n_q + 1) + n_t * (n_y + 2 * n_t + 12) + n_i * 4 + 16)
    numbers += kept_paths_bytes(scenario, keep_paths)
    text = 0
    for t in scenario.targets:
        text += len(t.id) + len(t.indicator) + len(t.kind) + len(t.label or "") + len(t.source.render())
    for ind in scenario.indicators:
        text += len(ind.id) + len(ind.label) + len(ind.unit) + 200
        if ind.start is not None:
            text += len(ind.start.provenance())
    # UTF-8 (up to 4 bytes a character for Chinese), variable-length string heaps, ~50 variables of metadata
    return int(2 * numbers + 8 * text + 512 * 1024)
