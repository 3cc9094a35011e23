"""A fuzzer over the loader: any YAML-shaped document either loads or raises the project's user error.

Documents are dumped with ``yaml.safe_dump`` to a file beside a valid baselines CSV and loaded with
``targetsim.load_scenario``. Two sources: random nested data (mappings, lists and scalars: Chinese text,
NaN, infinities, huge integers, booleans, nulls, dates, the scenario format's own words), and mutations
of the valid scenario of ``tests/test_bad_inputs.py`` (a value replaced at a random key path, a key
deleted, an unknown key added). A :class:`~targetsim.errors.TargetsimError` is the expected failure;
any other exception is a bug. No simulation runs here. Derandomized, so CI runs the same examples.
"""

from __future__ import annotations

import copy
import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import targetsim
from targetsim.errors import TargetsimError
from targetsim.model.parse import (
    GROWTH_KEYS, INDICATOR_KEYS, JUMP_KEYS, SHOCKS_KEYS, SOURCE_KEYS, START_KEYS, TARGET_KEYS, TOP_KEYS,
)
from targetsim.model.processes import ADDITIONS_KEYS, ORGANIC_KEYS, PROCESS_SPECS, PROJECT_KEYS
from targetsim.model.scenario import COMPARATORS, COUNT_DISTRIBUTIONS, PROCESS_KINDS, SHOCK_DISTRIBUTIONS, TARGET_KINDS
from tests.test_bad_inputs import CSV, GOOD

EXAMPLES = 500
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

VALID = yaml.safe_load(GOOD)
# file names a scenario may give for 'baselines' or 'extends': good, missing, odd, a device, too long
FILE_NAMES = ["b.csv", "scenario.yaml", ".", "..", "/dev/zero", "/dev/null", "~/b.csv", "https://example.org/a.yaml",
              "b\x00.csv", "基" * 200, "/".join(["d"] * 2000)]
KEYWORDS = sorted({*TOP_KEYS, *INDICATOR_KEYS, *TARGET_KEYS, *SOURCE_KEYS, *START_KEYS, *GROWTH_KEYS,
                   *SHOCKS_KEYS, *JUMP_KEYS, *PROJECT_KEYS, *ADDITIONS_KEYS,
                   *ORGANIC_KEYS, *(k for spec in PROCESS_SPECS.values() for k in spec.keys), "extends", "remove"})
WORDS = sorted({*KEYWORDS, *PROCESS_KINDS, *TARGET_KINDS, *COMPARATORS, *COUNT_DISTRIBUTIONS,
                *SHOCK_DISTRIBUTIONS, *VALID["indicators"], *FILE_NAMES, "baseline", "t_trade"})

chinese = st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), max_size=8)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers(min_value=1900, max_value=2200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 0.3, 0.47, 47.0, -1.0, 1.0, 1e-300, 1e300]),
    st.text(max_size=12),
    chinese,
    st.sampled_from(WORDS),
    st.dates(min_value=datetime.date(1800, 1, 1), max_value=datetime.date(2300, 1, 1)),
)
keys = st.one_of(st.sampled_from(KEYWORDS), st.text(max_size=10), chinese, st.integers(-5, 3000), st.booleans(),
                 st.none())


def nested(leaves: st.SearchStrategy) -> st.SearchStrategy:
    return st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(keys, inner, max_size=4)),
                        max_leaves=20)


values = nested(scalars)


def key_paths(data: Any, path: tuple = ()) -> list[tuple]:
    """Every key path of ``data`` (the root included)."""
    out = [path]
    if isinstance(data, dict):
        for k, v in data.items():
            out += key_paths(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += key_paths(v, (*path, i))
    return out


@st.composite
def mutated(draw) -> Any:
    """The valid scenario with one to three edits: replace a value, delete a key, add a key."""
    doc = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        paths = key_paths(doc)
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["replace", "delete", "add"]))
        if not path:
            if op == "replace":
                doc = draw(values)
            elif op == "add" and isinstance(doc, dict):
                doc[draw(keys)] = draw(values)
            continue
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        if op == "replace":
            parent[last] = draw(values)
        elif op == "delete":
            del parent[last]
        elif isinstance(parent[last], dict):
            parent[last][draw(keys)] = draw(values)
        elif isinstance(parent[last], list):
            parent[last].insert(draw(st.integers(0, len(parent[last]))), draw(values))
        else:
            parent[last] = draw(values)
    return doc


random_documents = st.one_of(values, st.dictionaries(st.one_of(st.sampled_from(TOP_KEYS), keys), values, max_size=8))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fuzz")
    (path / "b.csv").write_text(CSV, encoding="utf-8")
    return path


def load_or_user_error(folder: Path, doc: Any) -> None:
    path = folder / "scenario.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    try:
        scenario = targetsim.load_scenario(path)
    except TargetsimError as exc:
        assert str(exc).strip(), "a user error must say something"
        return
    assert scenario.indicators and scenario.targets


def test_the_valid_document_loads(folder):
    load_or_user_error(folder, VALID)
    assert targetsim.load_scenario(folder / "scenario.yaml").name == VALID["name"]


@pytest.mark.slow
@FUZZ
@given(doc=random_documents)
def test_random_documents(folder, doc):
    load_or_user_error(folder, doc)


@pytest.mark.slow
@FUZZ
@given(doc=mutated())
def test_mutations_of_a_valid_scenario(folder, doc):
    load_or_user_error(folder, doc)
