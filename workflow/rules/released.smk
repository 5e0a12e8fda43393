# Stage 5: the authors' released outputs (SRResNet-MSE, LapSRN, Glasner, SelfExSR, Papyan et al., their own DIP, ...)
# scored with the same metric code as ours, without any fit. Target: `snakemake released`.


rule score_released:
    input:
        job_input("score_released"),
    output:
        PATHS.scores(source="released"),
    log:
        PATHS.log("score_released", PATHS.level_key()),
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
        md=PATHS.released_check()["md"],
        csv=report(
            PATHS.released_check()["csv"],
            caption="../report/released_check.rst",
            category="Tables",
            labels={"table": "released outputs vs. expected"},
        ),
    log:
        PATHS.log("released_check"),
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
