"""Stage 4-5 jobs: scores with the paper's protocol, the DIP + early stop rows, the authors' released outputs and
``metrics.csv`` (``workflow/rules/score.smk``, ``released.smk``)."""

from __future__ import annotations

import pandas as pd

from dip.pipeline.dag import Job


def _write(frame: pd.DataFrame, path: str) -> pd.DataFrame:
    from dip.eval.scoring import COLUMNS
    from dip.files import atomic_write

    frame = frame.reindex(columns=COLUMNS)
    with atomic_write(path, "w") as fh:
        frame.to_csv(fh, index=False)
    return frame


def _auto_stops(outputs: list[dict], observation: str) -> list[dict]:
    """The auto stop's entries (:func:`dip.eval.scoring.auto_stop_output`) of the DIP fits among ``outputs``: where
    the task's rule stopped on each fit's logged curve (:func:`dip.fit.stopping.auto_stop_of`), its noise estimated
    from the fit's input ``observation`` (cropped as the fit cropped it), as ``dip --stop auto`` does."""
    import json
    from pathlib import Path

    from dip.data.imageio import crop_to_box, read_image
    from dip.eval.scoring import auto_stop_output
    from dip.fit.stopping import auto_stop_of

    fits = [o for o in outputs if o["method"] == "dip" and o.get("json") and Path(o["json"]).is_file()]
    observed = read_image(observation) if fits else None  # once per image, whatever its number of seeds
    entries = []
    for out in fits:
        record = json.loads(Path(out["json"]).read_text())
        obs = crop_to_box(observed, record.get("crop_box"))
        entries.append(auto_stop_output(out, record, auto_stop_of(record, observation=obs)))
    return entries


def score(job: Job, threads=None) -> pd.DataFrame:
    """Every output of one (dataset, task, level), and its degraded input, scored -> a tidy CSV; with the auto stop's
    rows, from the same DIP fits (:func:`_auto_stops`), unless it returns every fit's own output there
    (:func:`dip.eval.scoring.drop_repeated`)."""
    from dip.eval.scoring import drop_repeated, score_outputs

    wc, p = job.wildcards, job.params
    images = []
    for image, gt, obs in zip(p["images"], job.input["gt"], job.input["observation"]):
        outputs = [o for o in p["plan"] if o["image"] == image]
        images.append((image, gt, obs, outputs, _auto_stops(outputs, obs)))
    keep_auto = bool(drop_repeated([entry for *_, autos in images for entry in autos]))
    rows = []
    for image, gt, obs, outputs, autos in images:
        rows += score_outputs(wc["dataset"], wc["task"], p["level"], image, gt, obs, outputs + (autos if keep_auto else []))
    frame = _write(pd.DataFrame(rows), job.outputs[0])
    print(frame.groupby("method")["psnr"].mean().round(3).to_string())
    return frame


def score_es(job: Job, threads=None) -> pd.DataFrame:
    """The DIP + early stop rows of one level: each fit's output at its ES-WMV step (``<image>_seed<N>_es.png``)."""
    from dip.eval.scoring import score_outputs

    p, inp = job.params, job.input
    rows = []
    for image, gt in zip(p["images"], inp["gt"]):
        outputs = [
            {"method": "dip_es", "seed": seed, "png": png, "json": js}
            for (im, seed), png, js in zip(p["runs"], inp["pngs"], inp["jsons"])
            if im == image
        ]
        rows += [
            r
            for r in score_outputs(p["dataset"], p["task"], p["level"], image, gt, None, outputs)
            if r["method"] != "input"
        ]
    frame = _write(pd.DataFrame(rows), job.outputs[0])
    print(frame.to_string())
    return frame


def score_released(job: Job, threads=None) -> pd.DataFrame:
    """The authors' released outputs of one (benchmark, level), scored with the same metric code."""
    from dip.data.benchmarks import BENCHMARKS
    from dip.eval import scoring

    p = job.params
    first = BENCHMARKS[p["dataset"]].all_files(p["level"])[0]
    root = job.inputs[0][: -len(first)]  # inputs are <resources_dir>/<relative path>
    frame = _write(pd.DataFrame(scoring.score_released(p["dataset"], p["level"], root)), job.outputs[0])
    print(frame.groupby("method")["psnr"].mean().round(3).to_string())
    return frame


def gather(paths) -> pd.DataFrame:
    """Score CSVs as one frame (empty ones skipped), with the columns in their order."""
    from dip.eval.scoring import COLUMNS

    frames = [f for f in (pd.read_csv(p) for p in paths) if len(f)]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    return frame.reindex(columns=COLUMNS)


def metrics(job: Job, threads=None) -> pd.DataFrame:
    """``metrics.csv``: every score of the run in one tidy table (ours, DIP + early stop, the released outputs)."""
    frame = _write(gather(job.inputs), job.outputs[0])
    print(f"{len(frame)} rows")
    return frame


def released_check(job: Job, threads=None) -> pd.DataFrame:
    """The released outputs re-scored against the values they give (config/paper_numbers.yaml: released)."""
    from dip.eval.scoring import check_released
    from dip.eval.tables import load_paper_numbers, released_check_table, released_records
    from dip.eval.writers import write_table

    inp, out = job.input, job.output
    scores = gather(inp["scores"])
    _, _, tolerance = load_paper_numbers(inp["paper"])
    check = check_released(scores, released_records(inp["paper"], job.params["datasets"]), tolerance)
    caption = (
        f"The authors' released result images re-scored with this project's metric code, against the values they "
        f"give (config/paper_numbers.yaml: released); ok = within {tolerance} dB."
    )
    write_table(released_check_table(check), md=out["md"], csv=out["csv"], caption=caption, digits=3)
    print(check.to_string())
    if not check["ok"].all():
        print("WARNING: some re-scored numbers differ from the expected values by more than the tolerance")
    return check
