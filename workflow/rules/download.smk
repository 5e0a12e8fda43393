# Stage 1: download the files the config needs, one job per benchmark folder (download_<benchmark>_<level>) and one
# for the paper's other experiments (download_experiment_data), from the manifest (relative path + sha256) under
# `download_base_url`. pooch checks every hash; a mismatch leaves no file. Every job that reads a downloaded file
# checks its sha256 first (dip.pipeline.jobs.runner) and takes it as ancient() (common.smk, pinned): a file corrupted
# later fails that job with how to fix it (delete it and re-run: only that file is fetched again, and only the jobs
# that read it re-run).
# The job reads everything (base URL, manifest) from the config and has no params, script or conda env: it then runs
# only when a file is missing. Re-run for a newer script while its files are in place, it would leave the jobs that
# read them unscheduled in that run (dip.pipeline.steps.download says why).


for _job in PLAN.downloads():

    rule:
        name:
            _job.rule
        output:
            _job.output,
        log:
            PATHS.log("download", _job.rule.removeprefix("download_")),
        localrule: True
        run:
            download(output, config, log[0])
