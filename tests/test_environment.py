"""environment.yml (conda, Binder) must list the same dependencies and pins as pyproject.toml."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}  # PyPI name -> conda-forge name, where they differ
CONDA_ONLY = {"python", "pip"}


def split(requirement: str) -> tuple[str, str]:
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*", requirement)
    assert match, f"cannot parse requirement {requirement!r}"
    return match.group(1).lower(), match.group(2).replace(" ", "")


def pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["dev"]
    pairs = [split(r) for r in requirements]
    return {CONDA_NAMES.get(name, name): spec for name, spec in pairs}


def conda_requirements() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    pairs = [split(item) for item in env["dependencies"] if isinstance(item, str)]
    return {name: spec for name, spec in pairs if name not in CONDA_ONLY}


def test_same_packages_and_pins():
    assert conda_requirements() == pyproject_requirements()


def test_torch_and_triton_pinned_exactly():
    requirements = pyproject_requirements()
    assert requirements["pytorch"] == "==2.13.0"
    assert requirements["triton"] == "==3.7.1"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```(?:bash|sh)?\n(.*?)```", readme, re.S).group(1).split("\n")
    commands = [line.split("#")[0].strip() for line in first_block if line.split("#")[0].strip()]
    assert commands == ["make reproduce", "make test"], commands
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd "))]
    assert ci == ["make test"]
