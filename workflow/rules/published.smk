# Stage 5: the authors' released outputs (SRResNet-MSE, LapSRN, Glasner, SelfExSR, Papyan et al., their own DIP, ...)
# scored with the same metric code as ours, without any fit. Target: `snakemake published`.


rule score_published:
    input:
        job_input("score_published"),
    output:
        res("scores/published/{dataset}/{task}_{level}.csv"),
    log:
        res("logs/score_published/{dataset}/{task}_{level}.log"),
    conda:
        "../envs/dip.yaml"
    params:
        job=job_params("score_published"),
    shell:
        JOB


rule published_check:
    input:
        **PLAN.get("published_check").input,
    output:
        md=res("tables/published_check.md"),
        csv=report(
            res("tables/published_check.csv"),
            caption="../report/published_check.rst",
            category="Tables",
            labels={"table": "released outputs vs. expected"},
        ),
    log:
        res("logs/published_check.log"),
    conda:
        "../envs/dip.yaml"
    params:
        job=job_params("published_check"),
    shell:
        JOB


rule published:
    input:
        PLAN.get("published").input,
    localrule: True
