"""Every config mistake ends in one line naming the key, the bad value and what is allowed: a misspelt key, a name
the config does not run in any ``select`` list, a selection that keeps no fit, a value of the wrong type; and
``select``/``only`` read the same from a YAML layer as from ``--config`` (which passes every value as text)."""

from __future__ import annotations

import pytest

from dip.errors import DipInputError
from tests.helpers import job_counts, plan_of, scratch, snakemake

PAPER = ("--configfile", "config/paper.yaml")

# --config mistake -> what its one line must say (key, bad value, an allowed one)
MISTAKES = {
    "onyl=set5": ["unknown key 'onyl'", "did you mean 'only'", "only"],
    "select={datsets: [set5]}": ["select: unknown key 'datsets'", "datasets"],
    "select={experiments: [jpg]}": ["select: experiments: 'jpg'", "jpeg"],
    "select={tasks: [sr], datasets: [color9]}": ["keeps no fit", "tasks: [sr]", "color9/denoise/sigma25"],
    "select={levels: [3]}": ["select: levels: '3'", "x4"],
    "select={seeds: [7]}": ["select: seeds: '7'", "seeds: 0"],
    "only=set5/sr/3": ["only: 'set5/sr/3'", "x4, x8"],
    "pack_fits=many": ["pack_fits: 'many'", "integer"],
}


@pytest.mark.slow(seconds=4)
@pytest.mark.parametrize("override", list(MISTAKES))
def test_a_config_mistake_ends_in_one_line(tmp_path, override):
    proc = snakemake(scratch(tmp_path), "-n", "--cores", "1", *PAPER, "--config", override, check=False)
    assert proc.returncode != 0
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: config:")]
    assert len(errors) == 1, lines
    assert all(part in errors[0] for part in MISTAKES[override]), errors[0]
    assert len(lines) <= 4 and not any("Traceback" in line or "Failed validating" in line for line in lines), lines


@pytest.mark.slow(seconds=5)
def test_select_levels_from_the_command_line_plan_as_from_a_layer(tmp_path):
    """``--config`` gives ``levels: ['4']``, a YAML layer ``levels: [4]``: the same fits."""
    work = scratch(tmp_path)
    (work / "layer.yaml").write_text("select: {levels: [4], seeds: [0]}\n")
    from_layer = job_counts(snakemake(work, "-n", "--cores", "1", *PAPER, "layer.yaml").stdout)
    from_cli = job_counts(snakemake(work, "-n", "--cores", "1", *PAPER, "--config",
                                    "select={levels: [4], seeds: [0]}").stdout)  # fmt: skip
    planned = len(plan_of("config/paper.yaml", select={"levels": [4], "seeds": [0]}).by_rule("fit_dip"))
    assert from_layer == from_cli and from_layer["fit_dip"] == planned > 0


@pytest.mark.parametrize(
    "select, message",
    [
        ({"experiments": ["jpg"]}, "select: experiments: 'jpg' is not an experiment of the config"),
        ({"tasks": ["sr"], "datasets": ["color9"]}, r"select: \{tasks: \[sr\], datasets: \[color9\]\} keeps no fit"),
        ({"seeds": ["3"]}, "select: seeds: '3' is run by no experiment"),
        ({"datsets": ["set5"]}, "select: unknown key 'datsets'"),
    ],
)
def test_select_mistakes_fail_the_plan_in_one_line(select, message):
    with pytest.raises(DipInputError, match=message) as caught:
        plan_of("config/paper.yaml", select=select)
    assert "\n" not in str(caught.value)


def test_select_and_only_accept_numbers_and_labels_as_numbers_or_text():
    def fits(**overrides):
        return sorted(str(job.output) for job in plan_of("config/paper.yaml", **overrides).by_rule("fit_dip"))

    four = fits(select={"levels": [4]})
    assert four and four == fits(select={"levels": ["4"]}) == fits(select={"levels": ["x4"]})
    assert fits(only="set5/sr/4") == fits(only="set5/sr/x4") == fits(select={"levels": [4], "datasets": ["set5"]})
    assert fits(select={"seeds": ["0"], "datasets": ["set5"]}) == fits(select={"seeds": [0], "datasets": ["set5"]})
