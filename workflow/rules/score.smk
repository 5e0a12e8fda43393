# Stage 6: scores. One job per (dataset, task, level) scores every output (and the degraded input) with the paper's
# protocol (dip.eval.scoring); `metrics` gathers ours, the DIP + early stop rows and the published scores into one
# tidy metrics.csv.


rule score:
    input:
        unpack(job_input("score")),
    output:
        res("scores/ours/{dataset}/{task}_{level}.csv"),
    log:
        res("logs/score/{dataset}/{task}_{level}.log"),
    conda:
        "../envs/dip.yaml"
    params:
        plan=job_param("score", "plan"),
        level=job_param("score", "level"),
        images=job_param("score", "images"),
    script:
        "../scripts/score.py"


rule metrics:
    input:
        **PLAN.get("metrics").input,
    output:
        report(
            res("metrics.csv"),
            caption="../report/metrics.rst",
            category="Metrics",
            labels={"table": "metrics.csv"},
        ),
    log:
        res("logs/metrics.log"),
    localrule: True
    conda:
        "../envs/dip.yaml"
    script:
        "../scripts/metrics.py"
