"""The report as people see it: Snakemake's report of the committed reproduction (re-rendered from results/paper,
no fit) opened in a real headless browser (Debian's ``chromium``): the tables' numbers are in the rendered page, a
figure loads in the report's own viewer, and making it prints one line about missing metadata instead of one
warning per file."""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO

PAPER_CPU = ("--configfile", "config/paper.yaml", "config/paper-cpu.yaml")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--no-zygote",
                  "--disable-dev-shm-usage")  # fmt: skip
# A figure the report embeds (its data, as the report's viewer shows it), put in the page as an <img>: the page's
# load event waits for it, and the title then says whether the browser decoded it. (Driving the viewer itself,
# app.setView, did not re-render under headless chromium's virtual time: tried, the view stayed on the rule graph.)
SHOW_FIGURE = """<img id="figure-check" src="{uri}">
<script>
window.addEventListener("load", () => {{
  const img = document.getElementById("figure-check");
  document.title = img.complete && img.naturalWidth > 0 ? `figure loaded ${{img.naturalWidth}}x${{img.naturalHeight}}`
                                                         : "the figure did not load";
}});
</script>
"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("no chromium here (Debian: apt-get install chromium; .ci/run installs it when run as root)")
    return found


def _dump_dom(page: Path, timeout: float = 240) -> str:
    """The DOM after the page's scripts ran. Headless chromium may linger after printing it: it is stopped then."""
    cmd = [_chromium(), *CHROMIUM_FLAGS, "--virtual-time-budget=8000", "--dump-dom", page.as_uri()]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    out, deadline = b"", time.monotonic() + timeout
    try:
        os.set_blocking(proc.stdout.fileno(), False)
        while b"</html>" not in out and time.monotonic() < deadline and (proc.poll() is None or not out):
            chunk = proc.stdout.read() or b""
            out += chunk
            if not chunk:
                time.sleep(0.2)
                if proc.poll() is not None:
                    out += proc.stdout.read() or b""
                    break
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the browser we started, and its helper processes
        proc.wait()
    assert b"</html>" in out, f"chromium printed no page within {timeout:.0f} s"
    return out.decode(errors="replace")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, str]:
    """The report of the committed reproduction, made in a copy of the working tree's files (no fit runs)."""
    work = tmp_path_factory.mktemp("report")
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                            check=True).stdout.decode().split("\0")  # fmt: skip
    for rel in filter(None, listed):
        if (REPO / rel).is_file():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, work / rel)
    page = work / "report.html"
    proc = subprocess.run([sys.executable, "-m", "snakemake", *PAPER_CPU, "--report", str(page)], cwd=work,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return page, proc.stdout + proc.stderr


@pytest.mark.slow(seconds=20)
def test_making_the_report_prints_no_warning_per_file(report):
    _, log = report
    assert "Missing metadata" not in log
    assert sum("no Snakemake metadata" in line for line in log.splitlines()) == 1


@pytest.mark.slow(seconds=40)
def test_the_tables_numbers_are_in_the_rendered_page_and_a_figure_loads(report, tmp_path):
    page, _ = report
    with (REPO / "results/paper/tables/set5/sr_x4.csv").open() as f:
        rows = list(csv.DictReader(f))
    dip = next(r for r in rows if r["method"] == "DIP" and r["source"] == "ours")
    numbers = [v for k, v in dip.items() if v and re.fullmatch(r"\d+\.\d+", v)]
    html = page.read_text()
    figure = re.search(r'"(results/paper/figures/[^"]+_grid\.png)": \{.*?"data_uri": "(data:image/png[^"]+)"', html)
    assert figure, "the report embeds no figure grid"
    opened = tmp_path / "report.html"
    opened.write_text(html.replace("</body>", SHOW_FIGURE.format(uri=figure.group(2)) + "</body>"))
    dom = _dump_dom(opened)
    cells = set(re.findall(r"<td[^>]*>\s*([^<]*?)\s*</td>", dom))
    assert numbers and all(n in cells for n in numbers), f"DIP's row of set5/sr_x4 ({numbers}) is not in a table"
    title = re.search(r"<title>(.*?)</title>", dom).group(1)
    assert title.startswith("figure loaded"), f"{figure.group(1)}, embedded in the report: {title!r}"
