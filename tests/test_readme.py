"""The README's two set-up commands stay true: CI runs the test one verbatim."""

from __future__ import annotations

import re

from tests.conftest import ROOT


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [c.strip() for c in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_readme_has_the_two_commands():
    commands = readme_commands()
    run = [c for c in commands if "targetsim run scenarios/base.yaml" in c]
    tests = [c for c in commands if "pytest" in c]
    assert len(run) == 1 and len(tests) == 1
    assert run[0].startswith("python3 -m venv .venv") and tests[0].startswith("python3 -m venv .venv")


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = next(c for c in readme_commands() if "pytest" in c)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci.splitlines()
