"""Every command and snippet of the documentation runs: the fenced shell commands and Python snippets of README.md
and docs/*.md, and every module path (``dip.x.y``, ``dip.x.y.func``) the documentation names.

How each command runs (in a copy of the working tree's files, as a fresh clone has them):

- ``snakemake ...``: as a dry run (``-n`` added), which must plan; where the command's comment gives numbers
  (``... 5 fits``, ``... 53 jobs``) the plan must have them: the jobs of rule ``fit_dip`` and all jobs.
- ``make <target>``: ``make -n`` (the target exists and its commands expand).
- ``sed``, ``cp``, ``mkdir``: a line that writes a file the next commands read, run as written in the copy.
- ``dip ...``: on tiny inputs made for the names it reads (64 px photos, a mask), a fit capped at a few steps and
  8 channels (``--iters 3 --width 8`` appended: the last value of an option wins), the block's commands in order in
  one folder (``dip replay`` reads the record an earlier line wrote).
- A Python snippet (fence ``python``) runs as written, in an empty folder.

A command that must not run in a test (a daemon, a cluster, a network fetch, a GPU) is marked in the text with an
HTML comment on the line before its fence, ``<!-- not run: <why> -->``; :func:`test_marked_blocks_say_why` lists
them (``pytest -rA`` prints the counts). Fences of other kinds (``text``, ``yaml``, ``snakemake``) are examples,
not commands.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import REPO, crop_photo, job_counts, save_png

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# Module paths are checked in every Markdown file of the project's own text.
PROSE = [*DOCS, REPO / "BENCHMARKS.md", REPO / "config" / "README.md", REPO / "results" / "README.md"]
SHELL = ("bash", "sh", "shell", "console")
FENCE = re.compile(r"^```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
NOT_RUN = re.compile(r"<!--\s*not run:\s*(?P<why>.+?)\s*-->\s*$")
FITS = ("denoise", "sr", "inpaint", "jpeg", "flash")  # dip subcommands that fit: capped at a few steps
TINY = ("--iters", "3", "--width", "8", "--quiet")


@dataclass(frozen=True)
class Block:
    """One fenced block of a document: where it is, its kind, its text, and why it is not run (None: it is)."""

    doc: str
    line: int
    lang: str
    body: str
    not_run: str | None

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"

    def commands(self) -> list[tuple[list[str], str]]:
        """Each command of a shell block as (argv, its trailing comment): continued lines joined, comments off."""
        text = re.sub(r"\\\n\s*", " ", self.body)
        out = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            lexer = shlex.shlex(line, posix=True)  # a `#` that starts a word starts the comment
            lexer.whitespace_split = True
            comment = re.search(r"\s#\s(.*)$", line)
            out.append((list(lexer), comment.group(1).strip() if comment else ""))
        return out


def blocks(paths=DOCS) -> list[Block]:
    found = []
    for path in paths:
        text = path.read_text()
        for m in FENCE.finditer(text):
            lang = m.group("lang").lower()
            if lang not in SHELL and lang != "python":
                continue
            line = text.count("\n", 0, m.start()) + 1
            before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
            mark = NOT_RUN.search(before)
            found.append(Block(path.relative_to(REPO).as_posix(), line, "python" if lang == "python" else "shell",
                               m.group("body"), mark.group("why") if mark else None))  # fmt: skip
    return found


BLOCKS = blocks()
RUN = [b for b in BLOCKS if b.not_run is None]


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """The working tree's files as a fresh clone has them (tracked and untracked-not-ignored; no .venv, no inputs/)."""
    work = tmp_path_factory.mktemp("clone")
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                            check=True).stdout.decode().split("\0")  # fmt: skip
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, work / rel)
    return work


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1"}  # fmt: skip


def _run(argv: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=_env())
    assert proc.returncode == 0, f"{shlex.join(argv)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def _expected(comment: str) -> dict[str, int]:
    """The numbers a command's comment says it plans: ``N fits`` (fit_dip jobs), ``N jobs`` (all)."""
    said = {}
    for count, what in re.findall(r"(\d[\d,]*) (fits|jobs)\b", comment):
        said["fit_dip" if what == "fits" else "total"] = int(count.replace(",", ""))
    return said


def _snakemake(words: list[str], comment: str, clone: Path) -> None:
    args = words[1:]
    if "-n" not in args and "--dry-run" not in args:
        args = ["-n", *args]
    out = _run([sys.executable, "-m", "snakemake", *args], clone).stdout
    said = _expected(comment)
    if not said:
        return
    counts = {} if "Nothing to be done" in out else job_counts(out)
    planned = {"fit_dip": counts.get("fit_dip", 0), "total": counts.get("total", 0)}
    assert {k: planned[k] for k in said} == said, f"{shlex.join(words)}: the text says {said}, the plan {planned}"


def _inputs_for(words: list[str], folder: Path) -> None:
    """Tiny images for every image a ``dip`` command reads that the folder lacks (a mask for ``--mask``)."""
    outputs = {words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-o", "--output")}
    for i, word in enumerate(words):
        if not re.search(r"\.(png|jpe?g|tiff?|bmp)$", word, re.I) or word in outputs or (folder / word).exists():
            continue
        if words[i - 1] == "--mask":
            mask = np.ones((64, 64, 1), np.float32)
            mask[16:48, 16:48] = 0
            save_png(folder / word, mask)
        else:
            save_png(folder / word, crop_photo("astronaut" if "flash" not in word else "coffee", 64))


def _dip(words: list[str], folder: Path) -> None:
    _inputs_for(words, folder)
    tiny = list(TINY) if len(words) > 1 and words[1] in FITS else []
    _run([str(Path(sys.executable).parent / "dip"), *words[1:], *tiny], folder)


def _make(words: list[str], comment: str, clone: Path) -> None:
    _run(["make", "-n", *words[1:]], clone)


def _prepare(words: list[str], comment: str, clone: Path) -> None:
    """A line that writes a file the next commands read (``sed ... > my-fits.yaml``): run as written, by bash."""
    _run(["bash", "-c", shlex.join(words).replace("'>'", ">")], clone)


RUNNERS = {"snakemake": _snakemake, "make": _make, "sed": _prepare, "cp": _prepare, "mkdir": _prepare}


def _cost(block: Block) -> int:
    """Expected seconds on CI's 2 cores: a dry run ~5 s, a tiny dip fit ~10 s, a snippet ~15 s."""
    if block.lang == "python":
        return 15
    return sum({"dip": 10, "snakemake": 6}.get(words[0], 1) for words, _ in block.commands())


@pytest.mark.parametrize("block", [pytest.param(b, id=b.id, marks=pytest.mark.slow(seconds=_cost(b))) for b in RUN])
def test_documented_commands_run(block, clone, tmp_path):
    if block.lang == "python":
        (tmp_path / "snippet.py").write_text(block.body)
        _run([sys.executable, "snippet.py"], tmp_path, timeout=600)
        return
    for words, comment in block.commands():
        if words[0] == "dip":
            _dip(words, tmp_path)
        elif words[0] in RUNNERS:
            RUNNERS[words[0]](words, comment, clone)
        else:
            pytest.fail(f"{block.id}: `{shlex.join(words)}` is not a command this test runs ({', '.join(RUNNERS)}, "
                        f"dip): run it here or mark its block <!-- not run: why -->")  # fmt: skip


def test_marked_blocks_say_why():
    marked = [b for b in BLOCKS if b.not_run is not None]
    commands = sum(len(b.commands()) if b.lang == "shell" else 1 for b in RUN)
    print(f"\ndocs: {len(RUN)} blocks run ({commands} commands and snippets), {len(marked)} blocks marked not run:")
    for b in marked:
        print(f"  {b.id}: {b.not_run}")
    assert RUN and all(len(b.not_run) > 5 for b in marked)


MODULE_PATH = re.compile(r"(?<![\w/.@-])dip(?:\.[A-Za-z_]\w*)+")


def _resolves(dotted: str) -> bool:
    if dotted.endswith(".__main__"):  # runs the command when imported: found as a file instead
        return (REPO / Path(*dotted.split(".")[:-1]) / "__main__.py").is_file()
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def test_module_paths_named_in_the_docs_exist():
    named = {(p.relative_to(REPO).as_posix(), m.group(0).rstrip(".")) for p in PROSE
             for m in MODULE_PATH.finditer(p.read_text())}  # fmt: skip
    missing = sorted(f"{doc}: {dotted}" for doc, dotted in named if not _resolves(dotted))
    assert named and not missing, "named in the docs, not in the code:\n" + "\n".join(missing)
