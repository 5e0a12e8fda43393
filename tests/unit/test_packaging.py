"""The install path: pyproject.toml and environment.yml list the same packages; torch stays pinned to 2.13.0; `import
dip` is cheap and its public names resolve."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
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


def test_import_dip_is_cheap_and_its_public_names_resolve():
    """`import dip` and the task table load without torch (the workflow's planner and `dip --help` stay fast); the
    public names are imported on first use."""
    code = (
        "import dip, sys; dip.tasks; dip.DipInputError; assert dip.default_preset('sr', 8) == 'sr8'; "
        "assert 'torch' not in sys.modules, 'import dip imported torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)

    import dip

    assert dip.get_preset is __import__("dip.presets", fromlist=["get_preset"]).get_preset
    for name in dip.__all__:
        assert getattr(dip, name) is not None, name
    assert callable(dip.restore.restore) and callable(dip.fit.fit)  # the submodules, not same-named functions
    assert set(dip.__all__) <= set(dir(dip))
    with pytest.raises(AttributeError, match="no_such_name"):
        dip.no_such_name  # noqa: B018 -- the lookup is the test
