"""Reading a results file that ``targetsim run`` wrote, for the commands that read one (report, export,
compare), with one clear error when the file is missing or is not one."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from targetsim.errors import TargetsimError


def load_results(path: str | Path, required: tuple[str, ...] = ("attainment_probability",)) -> xr.Dataset:
    """The dataset in ``path``; ``required``: the variables the caller reads (a file without them is
    refused, naming them)."""
    from targetsim.io.netcdf import read_dataset

    path = Path(path)
    if not path.is_file():
        raise TargetsimError(f"{path}: no such results file; write one with `targetsim run SCENARIO -o {path}`")
    try:
        ds = read_dataset(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:  # what netCDF4/HDF5 and xarray raise for a bad file
        raise TargetsimError(f"{path}: not a NetCDF results file ({exc})") from None
    missing = [v for v in required if v not in ds.variables]
    if missing or "target" not in ds.dims:
        raise TargetsimError(f"{path}: not a targetsim results file (no {', '.join(missing) or 'target dimension'}); "
                             "these commands read the file `targetsim run` writes")
    return ds
