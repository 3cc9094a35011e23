"""The results table at the terminal widths planners use: no column squeezed to nothing."""

from __future__ import annotations

import re

import pytest
from rich.console import Console

import targetsim
from targetsim.report.table import print_results


@pytest.fixture(scope="module")
def base():
    return targetsim.run("scenarios/base.yaml", paths=4096, seed=1)


@pytest.mark.parametrize("width", [80, 100, 120, 160, 200])
def test_every_row_keeps_its_year_probability_and_pace(base, width):
    console = Console(width=width, record=True, force_terminal=False)
    print_results(base, console)
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= width
    # a row's first line holds its year (a long label wraps onto more lines, with empty other cells)
    rows = [line for line in lines if line.startswith("│") and "2027" in line]
    assert len(rows) == base.sizes["target"]
    header = [c.strip() for c in lines[2].split("┃")[1:-1]]
    assert header[0] == "target"                      # the Chinese label leads at every width
    labels = base["target_label"].values.tolist()
    for row, label in zip(rows, labels):
        first = row.split("│")[1].strip()
        assert label.startswith(first.split(" ")[0]) and len(first) >= 4  # never squeezed to a character
    assert ("id" in header) == (width >= 200)         # the id goes first: only where all fits on one line
    assert ("simulated" in header) == (width >= 100)
    needs_column = header.index("needs")
    for row, p, needs in zip(rows, base["attainment_probability"].values[0], base["required_growth"].values[0]):
        cells = [c.strip() for c in row.split("│")[1:-1]]
        assert "2027" in cells                        # the year is never cut
        assert f"{p * 100:.1f}" in row               # the probability is never cut
        assert cells[needs_column] == f"{needs * 100:.1f} %"
        if width >= 120:
            assert re.search(r"\[\d+\.\d % – \d+\.\d %\]", row)
        else:
            assert re.search(r"\d+\.\d ±\d+\.\d", row)
