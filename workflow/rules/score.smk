# Stage 6: scores. One job per (dataset, task, level) scores every output (and the degraded input) with the paper's
# protocol (dip.eval.scoring); `metrics` gathers ours and the published scores into one tidy metrics.csv.


rule score:
    input:
        unpack(score_inputs),
    output:
        res("scores/ours/{dataset}/{task}_{level}.csv"),
    log:
        res("logs/score/{dataset}/{task}_{level}.log"),
    conda:
        "../envs/dip.yaml"
    params:
        plan=score_plan,
        level=level_value,
        images=score_images,
    script:
        "../scripts/score.py"


rule metrics:
    input:
        ours=our_scores(),
        published=published_scores(),
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
