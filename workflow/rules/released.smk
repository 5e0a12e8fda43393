# Stage 5: the authors' released outputs (SRResNet-MSE, LapSRN, Glasner, SelfExSR, Papyan et al., their own DIP, ...)
# scored with the same metric code as ours, without any fit. Target: `snakemake released`.


rule score_released:
    input:
        job_input("score_released"),
    output:
        res("scores/released/{dataset}/{task}_{level}.csv"),
    log:
        res("logs/score_released/{dataset}/{task}_{level}.log"),
    conda:
        "../envs/dip.yaml"
    params:
        job=job_params("score_released"),
    shell:
        JOB


rule released_check:
    input:
        **PLAN.get("released_check").input,
    output:
        md=res("tables/released_check.md"),
        csv=report(
            res("tables/released_check.csv"),
            caption="../report/released_check.rst",
            category="Tables",
            labels={"table": "released outputs vs. expected"},
        ),
    log:
        res("logs/released_check.log"),
    conda:
        "../envs/dip.yaml"
    params:
        job=job_params("released_check"),
    shell:
        JOB


rule released:
    input:
        PLAN.get("released").input,
    localrule: True
