# Deep Image Prior (Ulyanov, Vedaldi, Lempitsky, CVPR 2018): the reproduction workflow.
#
#   snakemake --cores all                                   # the embedded default (offline, CPU, ~10 min)
#   snakemake --cores all --configfile config/paper.yaml    # the full reproduction (GPUs) -> results/paper/
#   snakemake --cores all published --configfile config/paper.yaml   # re-score the authors' released outputs only
#   snakemake --report results/report.html                  # tables + figures, captioned
#
# Stages (workflow/rules/): download -> degrade -> fit / baselines -> score (+ published) -> tables, figures; the
# paper's other experiments. Which jobs exist, with which inputs and params, is planned by dip.pipeline.plan
# (workflow/rules/common.smk); the restoration code lives in the `dip` package; rules only wire files to it
# (workflow/scripts/ are thin shims).


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/degrade.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/baselines.smk"
include: "workflow/rules/published.smk"
include: "workflow/rules/score.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/experiments.smk"


report: "workflow/report/workflow.rst"


rule all:
    default_target: True
    input:
        PLAN.get("all").input,
