"""The paper's other experiments (``workflow/rules/experiments.smk``): JPEG, text and hole inpainting, the
architectures, flash / no-flash, the SR prior effect, the pre-image; each a job with a record and its report."""

from __future__ import annotations

from dip.pipeline.dag import Job


def experiment(job: Job, threads=None):
    """``experiment_<name>``: one experiment -> its panels and record.json."""
    from dip.pipeline.run_experiment import run_experiment

    record = next(p for p in job.outputs if p.endswith("record.json"))
    return run_experiment(job.params["name"], job.params["spec"], dict(job.input), record)


def architecture(job: Job, threads=None):
    """``experiment_architecture``: the inpainting of Fig. 8 with one network -> PNG + JSON record."""
    from dip.pipeline.run_experiment import run_architecture

    out = job.output
    return run_architecture(job.wildcards["arch"], job.params["spec"], dict(job.input), out["png"], out["json"])


def architectures_summary(job: Job, threads=None):
    """``experiment_architectures``: the networks' results in one record, with the GT and the masked input."""
    from dip.pipeline.run_experiment import summarise_architectures

    out = job.output
    return summarise_architectures(job.params["spec"], dict(job.input), out["gt"], out["input"], out["record"])


def report(job: Job, threads=None):
    """``experiment_<name>_report``: an experiment's figure and table from its record."""
    from dip.pipeline.run_experiment import report_experiment

    record = next(p for p in job.inputs if p.endswith("record.json"))
    out = job.output
    return report_experiment(record, out["png"], out["pdf"], out["md"], out["csv"])
