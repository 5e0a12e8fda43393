"""The install path: pyproject.toml, environment.yml and workflow/envs/dip.yaml list the same packages; torch is a
range there (a cluster's own CUDA torch stays) and the Makefile pins the CPU wheel inside it; the wheel holds every
subpackage; `import dip` is cheap and its public names resolve."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import tomllib
import yaml
from packaging.specifiers import SpecifierSet

from tests.helpers import REPO


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _conda_requirements(path: str = "environment.yml") -> list[str]:
    env = yaml.safe_load((REPO / path).read_text())
    reqs = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):  # the rules' env also installs the workflow's own package (${DIP_PACKAGE})
            reqs.extend(r for r in dep["pip"] if r != "${DIP_PACKAGE}")
        elif not dep.startswith(("python", "pip")) or dep.startswith("pip:"):
            reqs.append(dep)
    reqs = [r.replace(" ", "") for r in reqs]  # conda's "numpy >=1.26" is pip's "numpy>=1.26"
    return [r.replace("=", "==", 1) if re.match(r"^[\w.-]+=[^=]", r) else r for r in reqs]


def test_environment_yml_lists_the_same_packages_as_pyproject():
    project = _pyproject()["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["test"]
    assert {_name(r) for r in declared} == {_name(r) for r in _conda_requirements()}


@pytest.mark.parametrize("env", ["environment.yml", "workflow/envs/dip.yaml"])
def test_versions_agree(env):
    """Every package of the conda environments has pyproject.toml's version spec (dip.yaml, the rules' environment,
    holds a subset: no snakemake, no test tools)."""
    project = _pyproject()["project"]
    declared = {_name(r): r for r in project["dependencies"] + project["optional-dependencies"]["test"]}
    for req in _conda_requirements(env):
        spec = req[len(_name(req)) :].strip()
        assert declared[_name(req)].endswith(spec), (env, req, declared[_name(req)])


def _torch_spec() -> SpecifierSet:
    (torch,) = [r for r in _pyproject()["project"]["dependencies"] if _name(r) == "torch"]
    return SpecifierSet(torch[len("torch") :])


def test_torch_is_a_range_that_holds_the_pinned_cpu_wheel():
    """pyproject.toml gives torch a range with a floor and a ceiling, so that `pip install -e .` keeps a cluster's own
    CUDA torch; `make install` pins the CPU wheel (installed first, so pip does not pull a CUDA build), inside it."""
    spec = _torch_spec()
    assert {s.operator for s in spec} == {">=", "<"}, spec
    makefile = (REPO / "Makefile").read_text()
    pins = set(re.findall(r'pip install[^\n]*"torch==([\d.]+)"', makefile))
    assert pins == {"2.13.0"}, pins
    assert spec.contains("2.13.0")
    assert makefile.index('"torch==2.13.0"') < makefile.index('install --quiet -e ".[test]"')  # torch first
    for version in ("2.4.0", "2.11.0", "2.14.1"):  # the floor, the GPU machines' torch, the benchmark venv's
        assert spec.contains(version), version
    assert not spec.contains("2.3.1") and not spec.contains("2.15.0")


def test_the_installed_torch_is_in_the_range():
    import torch

    assert _torch_spec().contains(torch.__version__.split("+")[0]), torch.__version__


def test_the_package_has_no_stale_package_data():
    """dip/data is a code subpackage now: there are no data files to ship (setuptools would warn about none)."""
    tool = _pyproject()["tool"]["setuptools"]
    assert "package-data" not in tool
    assert tool["packages"]["find"]["include"] == ["dip*"]


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


def test_every_subpackage_goes_into_the_wheel():
    """`packages.find` takes folders with an __init__.py: every folder of dip/ with code must have one, or the wheel
    (and a non-editable install) would silently miss it."""
    from setuptools import find_packages

    found = set(find_packages(where=REPO, include=_pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]))
    with_code = {
        ".".join(p.parent.relative_to(REPO).parts)
        for p in (REPO / "dip").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert with_code <= found, with_code - found
    assert {"dip.data", "dip.nets", "dip.fit", "dip.eval", "dip.experiments", "dip.pipeline"} <= found


def test_the_rules_env_installs_the_workflows_own_package(tmp_path, monkeypatch):
    # pip expands ${DIP_PACKAGE} in the env's pip section; common.smk sets it (dip.pipeline.workflow_config.use_source)
    from dip.pipeline.workflow_config import PACKAGE_ENV, use_source

    assert "${DIP_PACKAGE}" in yaml.safe_load((REPO / "workflow/envs/dip.yaml").read_text())["dependencies"][-1]["pip"]
    monkeypatch.delenv(PACKAGE_ENV, raising=False)
    use_source(REPO)
    assert os.environ[PACKAGE_ENV] == f"--editable={REPO.resolve()}"

    class Hosted:  # what Snakemake hands a module deployed from GitHub (sourcecache.GithubFile)
        repo, host, tag, commit, branch = "owner/dip", "github.com", "v1.0", None, None

    use_source(tmp_path / "not-a-checkout", Hosted())
    assert os.environ[PACKAGE_ENV] == "dip @ git+https://github.com/owner/dip@v1.0"
