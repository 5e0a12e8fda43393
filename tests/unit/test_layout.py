"""The results tree (dip.pipeline.layout): each path written once, the rules' patterns from the same methods."""

from __future__ import annotations

from dip.pipeline.layout import FIT_FILES, Layout


def test_called_without_arguments_a_method_gives_its_rules_pattern():
    paths = Layout("res/", "rsc")
    assert paths.restored() == "res/restored/{dataset}/{task}/{level}/{method}/{image}_seed{seed}.png"
    bird = paths.restored("set5", "sr", "x4", "bicubic", "bird", 0, ".json")
    assert bird == "res/restored/set5/sr/x4/bicubic/bird_seed0.json"
    assert paths.pack() == "res/restored/{dataset}/{task}/{level}/dip_packs/{pack}"
    log = paths.log("fit", paths.run_key(method="dip"))
    assert log == "res/logs/fit/{dataset}/{task}/{level}/dip/{image}_seed{seed}.log"
    assert paths.benchmark("baseline", paths.run_key()) == (
        "res/benchmarks/baseline/{dataset}/{task}/{level}/{method}/{image}_seed{seed}.tsv"
    )
    assert paths.log("metrics") == "res/logs/metrics.log" and paths.metrics == "res/metrics.csv"
    assert paths.resource("a/b.png") == "rsc/a/b.png" and paths.deterministic == ("rsc/", "res/inputs/")


def test_degraded_inputs_and_what_a_fit_reads_per_task():
    paths = Layout()
    assert list(paths.degraded(t="denoise")) == ["gt", "observation", "info"]
    assert list(paths.degraded(t="sr")) == ["gt", "hr", "observation", "info"]
    assert list(paths.degraded(t="inpaint")) == ["gt", "mask", "observation", "info"]
    assert paths.task_inputs("photos", "sr", "x4", "coffee") == {
        "observation": "results/inputs/photos/sr/x4/coffee/observation.png",
        "target": "results/inputs/photos/sr/x4/coffee/hr.png",
    }
    assert list(paths.task_inputs("photos", "inpaint", "missing50", "coffee")) == ["observation", "target", "mask"]


def test_a_packed_fit_is_copied_out_to_where_a_lone_fit_writes_it():
    paths = Layout()
    folder = paths.pack("color9", "denoise", "sigma25", "pack0")
    lone = paths.fit_outputs("color9", "denoise", "sigma25", "hill", 1, early_stopping=True)
    assert list(lone) == list(FIT_FILES) and "es" not in paths.fit_outputs()
    assert Layout.unpacked_record(folder, "hill", 1) == lone["json"]
    assert Layout.in_pack(folder, "hill", 1)["raw"] == f"{folder}/hill_seed1_raw.png"


def test_tables_figures_and_experiments():
    paths = Layout()
    assert paths.table(paths.level_key("set5", "sr", "x4")) == {
        ext: f"results/tables/set5/sr_x4.{ext}" for ext in ("md", "tex", "csv")
    }
    assert paths.figure(paths.figure_key("psnr_curves", "color9", "denoise", "sigma25"))["pdf"] == (
        "results/figures/color9/denoise_sigma25_psnr_curves.pdf"
    )
    assert paths.experiment_report("jpeg") == {
        "png": "results/figures/experiments/jpeg.png",
        "pdf": "results/figures/experiments/jpeg.pdf",
        "md": "results/tables/experiments/jpeg.md",
        "csv": "results/tables/experiments/jpeg.csv",
    }
    assert paths.experiment_outputs("jpeg", {"steps": [4]}) == [
        "results/experiments/jpeg/input.png",
        "results/experiments/jpeg/step4.png",
    ]
    assert paths.architecture("unet")["json"] == "results/experiments/architectures/net_unet.json"
    assert paths.spec_marker("fit_dip", "dataset=x", "abc") == "results/changed_specs/fit_dip/dataset=x.abc.json"
