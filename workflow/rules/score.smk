# Stage 4: scores. One job per (dataset, task, level) scores every output (and the degraded input) with the paper's
# protocol (dip.eval.scoring); score_es_* score the DIP + early stop outputs of one level; `metrics` gathers ours, the
# DIP + early stop rows and the released outputs' scores into one tidy metrics.csv (the union: each table reads its
# own scores, so that one table needs only its own fits).


rule score:
    input:
        unpack(job_input("score")),
    output:
        PATHS.scores(),
    log:
        PATHS.log("score", PATHS.level_key()),
    conda:
        "../envs/dip.yaml"
    params:
        job=job_params("score"),
    shell:
        JOB


for _d, _t, _lv in PLAN.es_levels():

    rule:
        name:
            f"score_es_{_d}_{_t}_{_lv}"
        input:
            unpack(job_input(f"score_es_{_d}_{_t}_{_lv}")),
        output:
            PATHS.es_scores(_d, _t, _lv),
        log:
            PATHS.log("score", PATHS.level_key(_d, _t, _lv) + "_es"),
        conda:
            "../envs/dip.yaml"
        params:
            job=job_params(f"score_es_{_d}_{_t}_{_lv}"),
        shell:
            JOB


rule metrics:
    input:
        **PLAN.get("metrics").input,
    output:
        report(
            PATHS.metrics,
            caption="../report/metrics.rst",
            category="Metrics",
            labels={"table": "metrics.csv"},
        ),
    log:
        PATHS.log("metrics"),
    localrule: True
    conda:
        "../envs/dip.yaml"
    params:
        job=job_params("metrics"),
    shell:
        JOB
