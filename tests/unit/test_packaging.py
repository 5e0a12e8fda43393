"""The install path: pyproject.toml and environment.yml list the same packages; torch stays pinned to 2.13.0."""

from __future__ import annotations

import re

import tomllib
import yaml

from tests.helpers import REPO


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _conda_requirements() -> list[str]:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    reqs = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            reqs.extend(dep["pip"])
        elif not dep.startswith(("python", "pip")) or dep.startswith("pip:"):
            reqs.append(dep)
    return [r.replace("=", "==", 1) if re.match(r"^[\w.-]+=[^=]", r) else r for r in reqs]


def test_environment_yml_lists_the_same_packages_as_pyproject():
    project = _pyproject()["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["test"]
    assert {_name(r) for r in declared} == {_name(r) for r in _conda_requirements()}


def test_versions_agree():
    project = _pyproject()["project"]
    declared = {_name(r): r for r in project["dependencies"] + project["optional-dependencies"]["test"]}
    for req in _conda_requirements():
        spec = req[len(_name(req)) :].strip()
        assert declared[_name(req)].endswith(spec), (req, declared[_name(req)])


def test_torch_is_pinned_to_the_local_cpu_wheel():
    assert "torch==2.13.0" in _pyproject()["project"]["dependencies"]
    assert 'torch==2.13.0' in (REPO / "Makefile").read_text()
