"""reproduce_gpu/run.sh, the one-command GPU reproduction, and its phases (reproduce_gpu/): its --tiny run end
to end on the CPU (inputs carried by reproduce_gpu/prepare_carry.sh from the benchmark mirror), for SR x4 and for a
grey inpainting block, the blocks (--blocks paths, --datasets shorthand, the default), the budget rule that decides
which fits start, that its fits are the ones `snakemake --configfile config/paper.yaml` plans, run as the workflow's
own jobs, and that a partial run scores only what it made."""

from __future__ import annotations

import builtins
import importlib.util
import json
import math
import os
import re
import subprocess
import sys

import pytest

from reproduce_gpu import config as gpu_config
from reproduce_gpu import inputs, report, schedule
from tests.helpers import MIRROR, REPO

SCRIPT = REPO / "reproduce_gpu" / "run.sh"
CARRY = REPO / "reproduce_gpu" / "prepare_carry.sh"


def _module():
    spec = importlib.util.spec_from_file_location("reproduce_gpu_run", REPO / "reproduce_gpu" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _plan(tmp_path, *argv):
    from dip.pipeline.plan import build_plan

    args = _module().parse_args(["--out", str(tmp_path / "out"), "--inputs", str(tmp_path / "in"), *argv])
    return args, build_plan(gpu_config.run_config(args, tmp_path / "in"))


def _jobs(plan) -> list[str]:
    return sorted(json.dumps({**job.to_json(), "resources": job.resources}, sort_keys=True) for job in plan.jobs())


def test_the_old_path_runs_the_runner():
    """benchmarks/gpu_reproduce.sh, the path the team's guide names, runs reproduce_gpu/run.sh with its arguments."""
    env = {**os.environ, "PYTHON": sys.executable}
    old = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_reproduce.sh"), "--help"], env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert old.returncode == 0 and "usage: run.py" in old.stdout and "--tiny" in old.stdout, old.stderr


def test_a_fit_starts_only_if_it_is_estimated_to_end_inside_the_budget():
    groups = [{"name": "big", "work": 1000}, {"name": "small", "work": 10}]
    pick = lambda running, now: schedule.pick_next(groups, running, now, deadline=100, rate=0.05,  # noqa: E731
                                                   startup=5)  # fmt: skip
    assert pick(0, 0)["name"] == "big"  # 5 + 1000 * 0.05 = 55 s
    assert pick(1, 0)["name"] == "small"  # beside another process the big one would take 105 s
    assert pick(0, 60)["name"] == "small"
    assert pick(0, 99) is None


def test_the_run_fits_what_the_paper_config_plans(tmp_path):
    """Same fit specs (preset, settings, early stopping) and file layout as the workflow with config/paper.yaml."""
    pytest.importorskip("snakemake")
    from dip.pipeline.plan import build_plan
    from tests.helpers import workflow_config

    args, ours = _plan(tmp_path)  # the default blocks: Set5 x4, gray11's 256 px images, Set14 x4
    paper = build_plan(workflow_config("config/paper.yaml"))
    for dataset, task, level, image in (("set5", "sr", "x4", "baby"), ("set14", "sr", "x4", "zebra"),
                                        ("gray11", "inpaint", "missing50", "house")):  # fmt: skip
        wc = {"dataset": dataset, "task": task, "level": level, "image": image, "seed": "0"}
        assert ours.get("fit_dip", wc).params == paper.get("fit_dip", wc).params
        for role, path in paper.get("fit_dip", wc).output.items():
            assert ours.get("fit_dip", wc).output[role] == path.replace("results/paper", str(args.out))
    score = {"dataset": "set5", "task": "sr", "level": "x4"}
    assert ours.get("score", score).output == [p.replace("results/paper", str(args.out))
                                                for p in paper.get("score", score).output]  # fmt: skip
    assert not ours.released and not ours.learning and ours.experiment_names == []


def test_blocks_are_paths_of_the_paper_config_as_its_only_key_takes_them(capsys):
    from dip.data.benchmarks import BENCHMARKS

    blocks = gpu_config.parse_blocks(["set5/sr/x4", "gray11/inpaint/0.5/house", "set14/sr/8",
                                      "gray11/inpaint/missing50/montage", "color9/denoise/sigma50"])  # fmt: skip
    assert [b.key for b in blocks] == [("set5", "sr", "x4"), ("gray11", "inpaint", "missing50"), ("set14", "sr", "x8"),
                                       ("color9", "denoise", "sigma50")]  # fmt: skip
    assert blocks[0].whole and blocks[0].images == BENCHMARKS["set5"].images and blocks[0].paths == ["set5/sr/x4"]
    gray = blocks[1]  # two paths of one level: one block of two images
    assert gray.images == ("house", "montage") and not gray.whole
    assert gray.paths == ["gray11/inpaint/missing50/house", "gray11/inpaint/missing50/montage"]
    assert [b.key for b in gpu_config.parse_blocks(["set5"])] == [("set5", "sr", "x4"), ("set5", "sr", "x8")]

    module = _module()
    assert [str(b) for b in module.parse_args([]).blocks] == [
        "set5/sr/x4", "gray11/inpaint/missing50 [house peppers256 Cameraman256 montage]", "set14/sr/x4"]
    assert [str(b) for b in module.parse_args(["--tiny"]).blocks] == ["set5/sr/x4"]
    shorthand = module.parse_args(["--datasets", "set5", "set14"]).blocks
    assert shorthand == gpu_config.parse_blocks(["set5/sr/x4", "set14/sr/x4"])

    for bad, said in (("foo/sr/x4", "runs no dataset 'foo' (it runs set5, set14, color9, gray11)"),
                      ("set5/denoise", "runs no task 'denoise' on set5 (it runs sr)"),
                      ("set5/sr/x3", "runs no level 'x3' of set5/sr (levels: x4, x8)"),
                      ("gray11/inpaint/0.3", "(levels: missing50)"), ("color9/denoise/x4", "(levels: sigma25, sigma50)"),
                      ("gray11/inpaint/0.5/lena", "gray11 has no image 'lena'"),
                      ("set5/sr/x4/head/seed0", "(the seed: --seed)")):  # fmt: skip
        with pytest.raises(ValueError, match=re.escape(said)) as err:
            gpu_config.parse_blocks([bad])
        assert str(err.value).startswith(f"--blocks: {bad!r}")
    with pytest.raises(SystemExit) as exit_:  # the command line: argparse's error, exit status 2
        module.parse_args(["--blocks", "foo/sr/x4"])
    assert exit_.value.code == 2 and "runs no dataset 'foo'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        module.parse_args(["--blocks", "set5/sr/x4", "--datasets", "set5"])


def test_a_grey_inpainting_block_runs_its_preset_the_cheap_baseline_and_only_its_images(tmp_path):
    """Each block's experiment of config/paper.yaml (preset, settings, level), only the CPU-cheap baseline, only the
    images named (through the planner's own only:), and the files its degrade jobs read."""
    from dip.presets import config_from_spec

    args, plan = _plan(tmp_path, "--blocks", "gray11/inpaint/0.5/house", "gray11/inpaint/0.5/montage",
                       "set5/sr/x4/head", "color9/denoise/50/hill")  # fmt: skip
    layer = gpu_config.run_layer(args, gpu_config.paper_config(), tmp_path / "in")
    gray = next(e for e in layer["experiments"] if e["dataset"] == "gray11")
    assert gray["dip"]["preset"] == "inpaint-pixels" and gray["baselines"] == ["biharmonic"]
    assert gray["levels"] == [0.5] and gray["seeds"] == [0]
    assert layer["only"] == ["gray11/inpaint/missing50/house", "gray11/inpaint/missing50/montage",
                             "set5/sr/x4/head", "color9/denoise/sigma50/hill"]  # fmt: skip
    fits = {(j.wildcards["dataset"], j.wildcards["image"]): j.params["spec"] for j in plan.by_rule("fit_dip")}
    assert sorted(fits) == [("color9", "hill"), ("gray11", "house"), ("gray11", "montage"), ("set5", "head")]
    assert fits[("gray11", "house")]["preset"] == "inpaint-pixels"
    assert config_from_spec(fits[("gray11", "house")]).iterations == 11000
    assert fits[("color9", "hill")]["preset"] == "denoise-sigma50" and fits[("set5", "head")]["preset"] == "sr4"
    baselines = sorted((j.wildcards["dataset"], j.wildcards["method"]) for j in plan.by_rule("baseline"))
    assert baselines == [("color9", "nlm"), ("gray11", "biharmonic"), ("gray11", "biharmonic"), ("set5", "bicubic")]
    # what the degrade jobs read is what the inputs phase checks: GT and the released masked / noisy input
    read = sorted(os.path.relpath(p, tmp_path / "in") for job in plan.jobs() if job.rule.startswith("degrade_")
                  for p in job.input.values())  # fmt: skip
    assert read == sorted(inputs.needed_files(args.blocks))
    assert any(p.endswith("house_masked.png") for p in read) and any(p.endswith("hill_noisy.png") for p in read)


def test_the_fits_run_block_by_block_in_the_order_given(tmp_path):
    from PIL import Image

    _, plan = _plan(tmp_path, "--tiny", "--blocks", "set5/sr/x8/head", "gray11/inpaint/0.5/house", "set5/sr/x4/bird")
    for job in plan.by_rule("fit_dip"):
        os.makedirs(os.path.dirname(job.input["target"]), exist_ok=True)
        Image.new("RGB", (64, 64)).save(job.input["target"])
    args = _module().parse_args(["--tiny", "--blocks", "set5/sr/x8/head", "gray11/inpaint/0.5/house",
                                 "set5/sr/x4/bird"])  # fmt: skip
    groups = schedule.fit_groups(plan, pack_max=4, order=[b.key for b in args.blocks])
    assert [g["name"] for g in groups] == ["set5_sr_x8_head_seed0", "gray11_inpaint_missing50_house_seed0",
                                           "set5_sr_x4_bird_seed0"]  # fmt: skip


def test_a_machine_without_snakemake_plans_the_same_run(tmp_path, monkeypatch):
    """A lent GPU machine has no Snakemake: the layers are merged alike, unvalidated, and the jobs are the same."""
    pytest.importorskip("snakemake")
    validated = {argv: _jobs(_plan(tmp_path, *argv)[1]) for argv in ((), ("--tiny",))}
    real_import = builtins.__import__

    def no_snakemake(name, *args, **kwargs):
        if name.split(".")[0] == "snakemake":
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_snakemake)
    for argv, jobs in validated.items():
        assert _jobs(_plan(tmp_path, *argv)[1]) == jobs


def test_fits_of_one_size_run_as_a_pack_of_the_workflows_jobs(tmp_path):
    """Four 64 px fits in one process (fit_dip_pack, then unpack_fit to the plan's fit_dip outputs), one lone fit
    (the plan's own fit_dip job)."""
    from PIL import Image

    _, plan = _plan(tmp_path, "--tiny", "--datasets", "set5")
    for job, size in zip(plan.by_rule("fit_dip"), [(64, 64)] * 4 + [(96, 64)]):
        os.makedirs(os.path.dirname(job.input["target"]), exist_ok=True)
        Image.new("RGB", size).save(job.input["target"])
    groups = schedule.fit_groups(plan, pack_max=4)
    assert [g["kind"] for g in groups] == ["pack", "lone"]
    pack, lone = groups
    assert [j["rule"] for j in pack["jobs"]] == ["fit_dip_pack"] + ["unpack_fit"] * 4
    fits = plan.by_rule("fit_dip")
    assert [j["output"] for j in pack["jobs"][1:]] == [dict(j.output) for j in fits[:4]]
    assert {j["input"]["pack"] for j in pack["jobs"][1:]} == set(pack["jobs"][0]["output"])
    assert lone["jobs"] == [fits[4].to_json()] and lone["members"] == ["woman_seed0"]


def test_a_partial_run_scores_only_the_outputs_it_made(tmp_path):
    """A fit skipped or killed at the deadline has no files: the score jobs are cut down to what exists."""
    _, plan = _plan(tmp_path, "--tiny", "--datasets", "set5")
    job = plan.get("score", {"dataset": "set5", "task": "sr", "level": "x4"})
    es_job = plan.es_score("set5", "sr", "x4")
    made = [o["png"] for o in job.params["plan"] if o["method"] == "bicubic" or o["image"] == "bird"]
    made_es = [p for (image, _), p in zip(es_job.params["runs"], es_job.input["pngs"]) if image == "bird"]
    for path in made + made_es + job.input["gt"]:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "wb").close()
    cut = report.made(job)
    assert sorted(o["png"] for o in cut.params["plan"]) == sorted(made) and len(made) == 5 + 2
    assert cut.params["images"] == job.params["images"] and cut.output == job.output
    es = report.made(es_job)
    assert [tuple(r) for r in es.params["runs"]] == [("bird", 0)] and es.input["pngs"] == made_es
    assert len(es.input["jsons"]) == 1 and es.input["gt"] == es_job.input["gt"]


@pytest.mark.slow(seconds=20)
def test_the_tiny_run_writes_the_workflow_layout_and_a_summary(tmp_path):
    if not MIRROR.is_dir():
        pytest.skip(f"benchmark mirror not found at {MIRROR}")
    import pandas as pd

    from dip.data.benchmarks import BENCHMARKS
    from dip.eval.scoring import COLUMNS

    carry = tmp_path / "carry"
    subprocess.run(["bash", str(CARRY), "--minimal", str(MIRROR), str(carry)], check=True, capture_output=True)
    assert (carry / "COMMIT").is_file() and (carry / "SHA256SUMS").is_file()
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    # a budget a slow, shared CPU does not exhaust (the budget rule itself is tested above)
    cmd = ["bash", str(SCRIPT), "--tiny", "--budget-minutes", "5", "--bundle", "--inputs", str(carry),
           "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    # what a lent GPU machine sends back: at most 8 files of at most 16 MiB, no folder
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and all((out / f).is_file() and (out / f).stat().st_size <= 16 * 2**20 for f in files)
    assert {"summary.md", "facts.txt", "cuda-tests.log", "records.tar.gz", "results.tar.000"} <= set(files)
    assert "nvidia-smi" in (out / "facts.txt").read_text()

    paper = tmp_path / "paper"  # as results/paper
    unpacked = subprocess.run(["bash", str(SCRIPT), "--unpack", str(out), "--into", str(paper)], env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
    assert unpacked.returncode == 0, unpacked.stderr
    records = out / "records"
    facts = json.loads((records / "facts.json").read_text())
    assert facts["torch"] and facts["python"] and facts["commit_file"]["text"]

    images = BENCHMARKS["set5"].images
    scores = pd.read_csv(paper / "scores/ours/set5/sr_x4.csv")
    assert list(scores.columns) == COLUMNS
    for method in ("dip", "bicubic"):
        rows = scores[scores["method"] == method]
        assert sorted(rows["image"]) == sorted(images) and rows["psnr"].map(math.isfinite).all()
    es = pd.read_csv(paper / "scores/extra/set5/sr_x4_es.csv")
    assert list(es.columns) == COLUMNS and set(es["method"]) == {"dip_es"} and len(es) == len(images)

    packed = []
    for image in images:
        stem = paper / f"restored/set5/sr/x4/dip/{image}_seed0"
        record = json.loads(stem.with_suffix(".json").read_text())
        assert record["spec"]["preset"] == "sr4" and record["early_stopping"]["detected_step"] is not None
        assert all((stem.parent / f"{stem.name}{suffix}").is_file() for suffix in (".png", "_raw.png", "_es.png"))
        assert (paper / f"inputs/set5/sr/x4/{image}/inputs.json").is_file()
        packed.append("pack" in record)
    assert any(packed) and not all(packed)  # one pack of four, one lone fit

    summary = (out / "summary.md").read_text()
    assert "| **mean** (5/5)" in summary and "Projected GPU time" in summary
    record = json.loads((records / "summary.json").read_text())
    steps = {row["what"]: row["steps"] for row in record["paper_workload"]}
    assert steps["set5 sr x4"] == 5 * 2000 and steps["set14 sr x8"] == 14 * 4000
    assert steps["gray11 inpaint missing50"] == 11 * 11000
    assert json.loads((records / "bench_fit.json").read_text())["speed"]
    assert "set5" in (records / "workflow-layer.yaml").read_text()
    assert (paper / "restored/set5/sr/x4/dip/baby_seed0.png").stat().st_mtime > (
        paper / "inputs/set5/sr/x4/baby/observation.png").stat().st_mtime  # the workflow's order

    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "not empty" in again.stderr


@pytest.mark.slow(seconds=12)
def test_the_tiny_run_fits_a_grey_inpainting_block_beside_an_sr_one(tmp_path, monkeypatch):
    """--blocks on the CPU: gray11's House (its released _masked input cropped with its ground truth) after Set5's
    head; the scores, records and summary table of each block, and a workflow layer that plans just those fits."""
    if not MIRROR.is_dir():
        pytest.skip(f"benchmark mirror not found at {MIRROR}")
    import numpy as np
    import pandas as pd
    from PIL import Image

    from dip.eval.scoring import COLUMNS
    from dip.pipeline.workflow_config import load
    from dip.pipeline.plan import build_plan

    carry = tmp_path / "carry"  # --minimal: what the default run reads, gray11's 256 px images among it
    subprocess.run(["bash", str(CARRY), "--minimal", str(MIRROR), str(carry)], check=True, capture_output=True)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    cmd = ["bash", str(SCRIPT), "--tiny", "--no-bench", "--budget-minutes", "5", "--inputs", str(carry),
           "--out", str(out), "--blocks", "set5/sr/x4/head", "gray11/inpaint/0.5/house"]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    scores = pd.read_csv(out / "scores/ours/gray11/inpaint_missing50.csv")
    assert list(scores.columns) == COLUMNS
    for method in ("dip", "biharmonic"):
        rows = scores[scores["method"] == method]
        assert list(rows["image"]) == ["house"] and rows["psnr"].map(math.isfinite).all()
    assert "bicubic" not in set(scores["method"])
    es = pd.read_csv(out / "scores/extra/gray11/inpaint_missing50_es.csv")
    assert list(es["method"]) == ["dip_es"] and list(es["image"]) == ["house"]
    assert set(pd.read_csv(out / "scores/ours/set5/sr_x4.csv")["image"]) == {"head"}
    record = json.loads((out / "restored/gray11/inpaint/missing50/dip/house_seed0.json").read_text())
    assert record["spec"]["preset"] == "inpaint-pixels"
    # the mask is the released one (the crop of house_masked.png, same window as the ground truth's), not a draw
    masked = next((out / "tiny-inputs").rglob("house_masked.png"))
    with Image.open(masked) as im, Image.open(out / "inputs/gray11/inpaint/missing50/house/mask.png") as mask:
        assert im.size == mask.size == (64, 64)
        assert ((np.asarray(im) != 0) == (np.asarray(mask).reshape(64, 64) > 0)).all()

    summary = (out / "summary.md").read_text()
    section = summary.split("## gray11/inpaint/missing50: ")[1].split("\n## ")[0]
    assert "preset inpaint-pixels (24 steps)" in section.splitlines()[0]
    header = section.splitlines()[2]
    assert "| Biharmonic ours |" in header and "| paper DIP |" in header and "Bicubic" not in section
    assert "| house | 64x64 |" in section and "| **mean** (1/1)" in section
    assert "## set5/sr/x4: " in summary and "Bicubic ours" in summary.split("## set5/sr/x4: ")[1]
    assert "SR x4, preset sr4" not in summary
    assert summary.index("## set5/sr/x4: ") < summary.index("## gray11/inpaint/missing50: ")  # the order given

    monkeypatch.chdir(REPO)  # the workflow's layer: it plans just the fits this run made
    layer = __import__("yaml").safe_load((out / "workflow-layer.yaml").read_text())
    plan = build_plan(load("config/paper.yaml", layer))
    assert sorted((j.wildcards["dataset"], j.wildcards["image"]) for j in plan.by_rule("fit_dip")) == [
        ("gray11", "house"), ("set5", "head")]
