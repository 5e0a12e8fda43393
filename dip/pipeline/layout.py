"""The workflow's results tree: every path under ``results_dir`` (and ``resources_dir``), written once (torch-free).

The planner (:mod:`dip.pipeline.plan`) names each job's files with a :class:`Layout`; the rules
(``workflow/rules/*.smk``, through ``PATHS`` in ``common.smk``) name their outputs, logs and benchmarks with the same
methods called with the wildcards' patterns: every argument that names a dataset, task, level, image, seed, method,
pack, kind or network defaults to its wildcard (``{dataset}``, ``{task}``, ...), so that a rule's pattern and the
planned job's paths cannot drift apart. Layout under ``results_dir``::

    inputs/<dataset>/<task>/<level>/<image>/                degraded inputs (gt, observation, hr, mask, inputs.json)
    restored/<dataset>/<task>/<level>/<method>/<image>_seed<N>.png|.json   outputs; DIP adds _raw.png (and _es.png,
                                                            and _auto.png where the auto stop fires before the budget)
    restored/<dataset>/<task>/<level>/dip_packs/pack<N>/    the fits of one pack (pack_fits > 1), copied out after
    scores/ours|released/<dataset>/<task>_<level>.csv      scores; scores/extra/.../<task>_<level>_es.csv: DIP + ES
    metrics.csv                                             every score, tidy
    tables/<dataset>/<task>_<level>.md|tex|csv              the paper's tables; tables/released_check.md|csv,
                                                            tables/experiments/<name>.md|csv
    figures/<dataset>/<task>_<level>_grid|_psnr.png|pdf     figures; figures/<dataset>/denoise_<level>_psnr_curves,
                                                            figures/learning_curves, figures/experiments/<name>
    curves/<dataset>/<image>/<kind>.json                    Fig. 2's learning curves
    experiments/<name>/record.json + <panel>.png            the paper's other experiments (one job each;
                                                            architectures: net_<arch>.png|json, one per network)
    logs/<stage>/<key>.log, benchmarks/<stage>/<key>.tsv    each job's log and Snakemake benchmark (key: the job's
                                                            subject, as its outputs name it)
    changed_specs/<rule>/<job>.<hash>.json                  what re-runs a stale job (dip.pipeline.pins)
    packs/<name>/                                           the GPU reproduction's packs (benchmarks/gpu)

Downloads lie under ``resources_dir`` as under the download base URL (the manifest's paths).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from dip.pipeline.paper_experiments import PANELS

__all__ = ["Layout", "FIT_FILES", "PACKS", "AUTO_STOP_IMAGE", "auto_stop_image"]

# the rules' wildcards: what each argument below defaults to
DATASET, TASK, LEVEL, IMAGE, SEED = "{dataset}", "{task}", "{level}", "{image}", "{seed}"
METHOD, PACK, KIND, ARCH = "{method}", "{pack}", "{kind}", "{arch}"

PACKS = "dip_packs"  # a level's pack folders, beside its methods' folders
FIT_FILES = {"png": ".png", "raw": "_raw.png", "json": ".json", "es": "_es.png"}  # one DIP fit's files: role -> suffix
# The image the auto stop returns, where its rule fires before the fit's budget: a companion of the fit's outputs that
# its record names (``auto_stop.image``), not a declared output -- whether the rule fires is known only after the fit,
# and fits recorded before the file existed stay finished without it (their rows replay the rule on the logged curve).
AUTO_STOP_IMAGE = "_auto.png"


def auto_stop_image(png) -> str:
    """The auto stop's image beside a DIP fit's restored PNG ``<image>_seed<N>.png``: ``<image>_seed<N>_auto.png``."""
    png = str(png)
    stem = png[: -len(".png")] if png.endswith(".png") else png
    return stem + AUTO_STOP_IMAGE


def _fit(image, seed) -> str:
    """One fit's (or baseline run's) file stem: ``<image>_seed<N>``."""
    return f"{image}_seed{seed}"


def _run(method, image, seed) -> str:
    """One output's name under its level: ``<method>/<image>_seed<N>``."""
    return f"{method}/{_fit(image, seed)}"


class Layout:
    """The paths of one results tree (``results``) and its downloads (``resources``)."""

    def __init__(self, results: str = "results", resources: str = "resources"):
        self.results = str(results).rstrip("/")
        self.resources = str(resources).rstrip("/")

    def res(self, path: str) -> str:
        """A path under results_dir."""
        return f"{self.results}/{path}"

    def resource(self, rel: str) -> str:
        """A downloaded file, laid out under resources_dir as under the download base URL."""
        return f"{self.resources}/{rel}"

    @property
    def deterministic(self) -> tuple[str, str]:
        """The prefixes of what is made the same every time: downloads (pinned by their sha256) and the degraded
        inputs (made from them by a seeded function)."""
        return f"{self.resources}/", self.res("inputs/")

    # --- keys: a job's subject, shared by its outputs, its log and its benchmark -----------------------------------

    @staticmethod
    def level_key(d=DATASET, t=TASK, lv=LEVEL) -> str:
        return f"{d}/{t}_{lv}"

    @staticmethod
    def image_key(d=DATASET, t=TASK, lv=LEVEL, image=IMAGE) -> str:
        return f"{d}/{t}/{lv}/{image}"

    @staticmethod
    def run_key(d=DATASET, t=TASK, lv=LEVEL, method=METHOD, image=IMAGE, seed=SEED) -> str:
        return f"{d}/{t}/{lv}/{_run(method, image, seed)}"

    @staticmethod
    def pack_key(d=DATASET, t=TASK, lv=LEVEL, pack=PACK) -> str:
        return f"{d}/{t}/{lv}/{PACKS}/{pack}"

    @staticmethod
    def curve_key(d=DATASET, image=IMAGE, kind=KIND) -> str:
        return f"{d}/{image}/{kind}"

    @staticmethod
    def figure_key(kind: str, d=DATASET, t=TASK, lv=LEVEL) -> str:
        """A figure of one level: ``grid``, ``psnr`` or (denoising) ``psnr_curves``."""
        return f"{Layout.level_key(d, t, lv)}_{kind}"

    # --- inputs/ ---------------------------------------------------------------------------------------------------

    def degraded(self, d=DATASET, t=TASK, lv=LEVEL, image=IMAGE) -> dict[str, str]:
        """What degrade_<task> makes of one image: gt, hr (SR), mask (inpainting), observation, info."""
        folder = self.res(f"inputs/{self.image_key(d, t, lv, image)}")
        files = {"gt": f"{folder}/gt.png"}
        if t == "sr":
            files["hr"] = f"{folder}/hr.png"
        if t == "inpaint":
            files["mask"] = f"{folder}/mask.png"
        return files | {"observation": f"{folder}/observation.png", "info": f"{folder}/inputs.json"}

    @staticmethod
    def input_info(observation: str) -> str:
        """The record (``info``) of the degrade job that made ``observation``: beside it (:meth:`degraded`)."""
        return os.path.join(os.path.dirname(observation), "inputs.json")

    def task_inputs(self, d: str, t: str, lv: str, image: str) -> dict[str, str]:
        """What a fit or a baseline reads: observation, the target to log PSNR against, the mask (inpainting)."""
        made = self.degraded(d, t, lv, image)
        files = {"observation": made["observation"], "target": made["hr" if t == "sr" else "gt"]}
        if t == "inpaint":
            files["mask"] = made["mask"]
        return files

    # --- restored/ -------------------------------------------------------------------------------------------------

    def restored(self, d=DATASET, t=TASK, lv=LEVEL, method=METHOD, image=IMAGE, seed=SEED, suffix=".png") -> str:
        return self.res(f"restored/{self.run_key(d, t, lv, method, image, seed)}{suffix}")

    def fit_outputs(self, d=DATASET, t=TASK, lv=LEVEL, image=IMAGE, seed=SEED, early_stopping=False) -> dict[str, str]:
        """The files of one DIP fit: restored PNG, raw PNG, JSON record and, when early stopping is recorded, the
        output at the detected step (``<image>_seed<N>_es.png``)."""
        roles = [role for role in FIT_FILES if early_stopping or role != "es"]
        return {role: self.restored(d, t, lv, "dip", image, seed, FIT_FILES[role]) for role in roles}

    def pack(self, d=DATASET, t=TASK, lv=LEVEL, pack=PACK) -> str:
        """The folder of one pack of fits (``pack<N>``; a lone fit's is ``none``, which nothing makes)."""
        return self.res(f"restored/{self.pack_key(d, t, lv, pack)}")

    @staticmethod
    def in_pack(folder: str, image, seed) -> dict[str, str]:
        """One fit's files inside its pack folder, by role (:data:`FIT_FILES`), as ``fit_pack`` writes them."""
        return {role: f"{folder}/{_fit(image, seed)}{suffix}" for role, suffix in FIT_FILES.items()}

    @staticmethod
    def unpacked_record(folder: str, image, seed) -> str:
        """A packed fit's record where unpack_fit copies it: in its level's dip/, beside the level's dip_packs/."""
        level = folder.rsplit(f"/{PACKS}/", 1)[0]
        return f"{level}/{_run('dip', image, seed)}{FIT_FILES['json']}"

    # --- scores/, metrics.csv, tables/, figures/ -------------------------------------------------------------------

    def scores(self, d=DATASET, t=TASK, lv=LEVEL, source="ours") -> str:
        """The scores of one level: ``ours`` (our fits and baselines) or ``released`` (the authors' outputs)."""
        return self.res(f"scores/{source}/{self.level_key(d, t, lv)}.csv")

    def es_scores(self, d=DATASET, t=TASK, lv=LEVEL) -> str:
        """The ``dip_es`` rows (DIP + early stop) of one level."""
        return self.res(f"scores/extra/{self.level_key(d, t, lv)}_es.csv")

    @property
    def metrics(self) -> str:
        return self.res("metrics.csv")

    def table(self, key: str, exts=("md", "tex", "csv")) -> dict[str, str]:
        """A table (``key``: :meth:`level_key`, ``released_check``, ``experiments/<name>``) in each format."""
        return {ext: self.res(f"tables/{key}.{ext}") for ext in exts}

    def released_check(self) -> dict[str, str]:
        return self.table("released_check", ("md", "csv"))

    def early_stopping_table(self) -> dict[str, str]:
        return self.table("experiments/early_stopping", ("md", "csv"))

    def figure(self, key: str) -> dict[str, str]:
        """A figure (``key``: :meth:`figure_key`, ``learning_curves``, ``experiments/<name>``) as PNG and PDF."""
        return {"png": self.res(f"figures/{key}.png"), "pdf": self.res(f"figures/{key}.pdf")}

    # --- curves/, experiments/ -------------------------------------------------------------------------------------

    def curve(self, d=DATASET, image=IMAGE, kind=KIND) -> str:
        return self.res(f"curves/{self.curve_key(d, image, kind)}.json")

    def experiment_record(self, name: str) -> str:
        return self.res(f"experiments/{name}/record.json")

    def experiment_outputs(self, name: str, spec: Mapping) -> list[str]:
        """The images an experiment job writes (its record.json comes separately)."""
        folder = self.res(f"experiments/{name}")
        if name == "jpeg":
            return [f"{folder}/input.png"] + [f"{folder}/step{s}.png" for s in spec["steps"]]
        if name == "preimage":
            return [f"{folder}/{image}_{p}.png" for image in spec["images"] for p in PANELS[name]]
        if name == "architectures":
            return [f"{folder}/gt.png", f"{folder}/input.png"]
        return [f"{folder}/{p}.png" for p in PANELS[name]]

    def experiment_report(self, name: str) -> dict[str, str]:
        """An experiment's figure (png, pdf) and table (md, csv)."""
        return self.figure(f"experiments/{name}") | self.table(f"experiments/{name}", ("md", "csv"))

    def architecture(self, arch=ARCH) -> dict[str, str]:
        """One network's fit of the architecture comparison: png, json."""
        stem = self.res(f"experiments/architectures/net_{arch}")
        return {"png": f"{stem}.png", "json": f"{stem}.json"}

    # --- logs/, benchmarks/, changed_specs/, packs/ ----------------------------------------------------------------

    def log(self, *parts: str) -> str:
        """A job's log: ``logs/<stage>/<key>.log`` (``logs/<rule>.log`` for a job of its own)."""
        return self.res(f"logs/{'/'.join(parts)}.log")

    def benchmark(self, *parts: str) -> str:
        """A job's Snakemake benchmark: ``benchmarks/<stage>/<key>.tsv``."""
        return self.res(f"benchmarks/{'/'.join(parts)}.tsv")

    def spec_marker(self, rule: str, name: str, digest: str) -> str:
        """The marker a stale job reads so that it runs again (:func:`dip.pipeline.pins.spec_marker`)."""
        return self.res(f"changed_specs/{rule}/{name}.{digest}.json")

    def gpu_pack(self, name: str) -> str:
        """A pack folder of the GPU reproduction (``reproduce_gpu/schedule.py``)."""
        return self.res(f"packs/{name}")
