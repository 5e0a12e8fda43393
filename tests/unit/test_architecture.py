"""The package follows the data path (docs/ARCHITECTURE.md): dip.data -> dip.fit / dip.nets -> dip.eval -> dip.pipeline,
over a few bottoms that every stage reads and that import no stage. Checked on the source with ``ast`` (nothing is
imported or run): no module imports a later stage than its own, dip.eval only reads results -- it imports no fitting
(dip.fit, dip.restore, dip.nets, dip.baselines) -- and no two modules import each other, directly or through others
(imports inside functions and under ``TYPE_CHECKING`` count too)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import REPO

PACKAGE = REPO / "dip"

# Read by every stage; they import only each other (no exception).
SHARED = ("dip", "dip.errors", "dip.files", "dip.tasks", "dip.methods", "dip.physics")
# The stages of the data path, in order: a module may import its own stage, an earlier one and the shared bottoms.
STAGES = {
    "dip.data": ("dip.data",),  # benchmarks, image files, degradations
    # making restored images; the presets are the authors' settings as FitConfigs
    "dip.fit": ("dip.fit", "dip.nets", "dip.presets", "dip.restore", "dip.baselines"),
    "dip.eval": ("dip.eval",),  # scoring them, tables, figures
    "dip.pipeline": ("dip.pipeline", "dip.experiments", "dip.cli", "dip.__main__"),  # what runs the stages
}
# dip.eval reads results (scores, records, images); it does not make them, though the fit stage comes earlier.
NOT_FROM_EVAL = ("dip.fit", "dip.restore", "dip.nets", "dip.baselines")
# The exceptions: (importer, imported) prefixes, each with its reason.
ALLOWED = {
    ("dip.fit", "dip.eval.metrics"): "a fit's record logs its PSNR against the ground truth with the paper's metric",
}


def _under(name: str, prefix: str) -> bool:
    return name == prefix or (prefix != "dip" and name.startswith(prefix + "."))


def _place(name: str) -> int | None:
    """The stage of module ``name`` (0 = dip.data), None for a shared bottom; KeyError for a module with no place."""
    for i, stage in enumerate(STAGES.values()):
        if any(_under(name, prefix) for prefix in stage):
            return i
    if any(_under(name, prefix) for prefix in SHARED):
        return None
    raise KeyError(name)


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every dip module ``path`` imports, at module level or inside a function (``from a import b`` is ``a.b`` when
    ``b`` is a module, else ``a``)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                module = REPO.joinpath(*sub.split("."))
                found.add(sub if module.with_suffix(".py").is_file() or module.is_dir() else base)
    return {n for n in found if _under(n, "dip") or n.startswith("dip.")}


def _package_imports() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _violations(imports: dict[str, set[str]]) -> list[str]:
    """One line per import that goes against the data path."""
    out, names = [], list(STAGES)
    for importer, targets in sorted(imports.items()):
        mine = _place(importer)
        for target in sorted(targets):
            if any(_under(importer, a) and _under(target, b) for a, b in ALLOWED):
                continue
            theirs = _place(target)
            if _under(importer, "dip.eval") and any(_under(target, p) for p in NOT_FROM_EVAL):
                out.append(f"{importer} imports {target}: dip.eval reads results, it does not fit")
            elif mine is None and theirs is not None:
                out.append(f"{importer} (shared) imports {target} (stage {names[theirs]})")
            elif mine is not None and theirs is not None and theirs > mine:
                out.append(f"{importer} (stage {names[mine]}) imports the later stage's {target}")
    return out


def test_every_module_has_a_place_on_the_data_path():
    unplaced = []
    for name in _package_imports():
        try:
            _place(name)
        except KeyError:
            unplaced.append(name)
    assert not unplaced, f"put these on a stage or among the shared bottoms (this test's STAGES/SHARED): {unplaced}"


def test_no_module_imports_a_later_stage_and_eval_only_reads_results():
    problems = _violations(_package_imports())
    assert not problems, "\n".join(problems)


def test_the_check_finds_an_import_against_the_data_path():
    planted = {
        "dip.data.degrade": {"dip.eval.tables", "dip.tasks"},  # an earlier stage importing a later one
        "dip.eval.figures": {"dip.restore", "dip.data.imageio"},  # eval running a fit
        "dip.eval.scoring": {"dip.fit.stopping"},
        "dip.tasks": {"dip.pipeline.plan"},  # a shared bottom importing a stage
        "dip.pipeline.steps": {"dip.fit.engine", "dip.eval.scoring", "dip.data.degrade"},  # the last stage: fine
        "dip.fit.stopping": {"dip.eval.metrics"},  # ALLOWED
    }
    assert _violations(planted) == [
        "dip.data.degrade (stage dip.data) imports the later stage's dip.eval.tables",
        "dip.eval.figures imports dip.restore: dip.eval reads results, it does not fit",
        "dip.eval.scoring imports dip.fit.stopping: dip.eval reads results, it does not fit",
        "dip.tasks (shared) imports dip.pipeline.plan (stage dip.pipeline)",
    ]


def _circles(imports: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: each set of two or more modules that reach each other through imports (Tarjan's strongly
    connected components), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in imports.get(v, ()):
            if w not in imports:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for name in sorted(imports):
        if name not in index:
            visit(name)
    return sorted(found)


def test_no_import_circle():
    circles = _circles(_package_imports())
    assert not circles, "modules that import each other (move what both need to a lower module): " + str(circles)


def test_the_check_finds_an_import_circle():
    planted = {"dip.a": {"dip.b"}, "dip.b": {"dip.c", "dip.tasks"}, "dip.c": {"dip.a"}, "dip.tasks": set(),
               "dip.d": {"dip.e"}, "dip.e": {"dip.d"}}  # fmt: skip
    assert _circles(planted) == [["dip.a", "dip.b", "dip.c"], ["dip.d", "dip.e"]]
    assert _circles({"dip.a": {"dip.b"}, "dip.b": set()}) == []


def test_imports_are_read_from_the_source():
    found = _imports(PACKAGE / "pipeline" / "jobs" / "scores.py")
    assert "dip.eval.scoring" in found and "dip.pipeline.dag" in found  # in a function and at module level
    assert _imports(PACKAGE / "eval" / "scoring.py") >= {"dip.eval.metrics", "dip.data.imageio"}  # from dip.eval import
