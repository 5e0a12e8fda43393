"""The per-stage planners (dip.pipeline.planners): what the jobs of a stage read."""

from __future__ import annotations

import pytest

from tests.helpers import plan_of

pytestmark = pytest.mark.usefixtures("in_repo")  # the configs name the manifest relative to it


def test_the_report_jobs_read_the_scores_of_their_own_tables():
    plan = plan_of("config/paper.yaml", "config/paper-cpu.yaml")
    es = plan.get("early_stop_table")
    # the early-stopping table shows the tables' PSNRs: the dip rows (ours) and the dip_es rows of each level it covers
    from tests.helpers import paper_cpu_fits

    for ours in ("results/paper/scores/ours/color9/denoise_sigma25.csv", "results/paper/scores/ours/set5/sr_x4.csv",
                 "results/paper/scores/extra/color9/denoise_sigma25_es.csv", "results/paper/scores/extra/set5/sr_x4_es.csv"):
        assert ours in es.input["scores"]  # fmt: skip
    assert all(p.startswith(("results/paper/scores/ours/", "results/paper/scores/extra/")) for p in es.input["scores"])
    assert len(es.input["records"]) == len(paper_cpu_fits())
    figure = plan.get("figure_psnr", {"dataset": "set5", "task": "sr", "level": "x4"})
    assert figure.input["scores"] == plan.table_scores("set5", "sr", "x4")  # the table's own, the released ones too
    assert figure.input["paper"] == "config/paper_numbers.yaml"  # the paper's means, drawn apart
    assert "results/paper/scores/released/set5/sr_x4.csv" in figure.input["scores"]
    # a grid labels each output with its own score: its seed travels with it
    grid = plan.get("figure_grid", {"dataset": "set5", "task": "sr", "level": "x4"})
    assert grid.params["plan"][0]["panels"][2] == ("dip", "results/paper/restored/set5/sr/x4/dip/bird_seed0.png", 0)


def test_plan_gives_the_sr_bicubic_job_the_full_frame_gt(monkeypatch):
    from dip.pipeline.plan import build_plan
    from tests.helpers import REPO, workflow_config

    monkeypatch.chdir(REPO)
    plan = build_plan(workflow_config())
    jobs = [j for j in plan.by_rule("baseline") if j.params["spec"]["task"] == "sr"]
    assert jobs
    for job in jobs:
        inputs = job.input
        assert ("gt" in inputs) == (job.params["spec"]["name"] == "bicubic")
        if "gt" in inputs:
            assert inputs["gt"].endswith("/gt.png") and inputs["observation"].endswith("/observation.png")
