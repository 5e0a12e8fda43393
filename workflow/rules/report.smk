# Stages 7-8: the paper's tables (Markdown, LaTeX, CSV; the paper's rows beside ours) and figures (PNG + PDF).
# They read metrics.csv, the fit records and the restored images only: deleting them (or --forcerun table
# figure_grid ...) regenerates them without any refit.


rule table:
    input:
        unpack(job_input("table")),
    output:
        md=res("tables/{dataset}/{task}_{level}.md"),
        tex=res("tables/{dataset}/{task}_{level}.tex"),
        csv=report(
            res("tables/{dataset}/{task}_{level}.csv"),
            caption="../report/table.rst",
            category="Tables",
            subcategory="{dataset}",
            labels={"task": "{task}", "level": "{level}"},
        ),
    log:
        res("logs/table/{dataset}/{task}_{level}.log"),
    localrule: True
    conda:
        "../envs/dip.yaml"
    params:
        level=job_param("table", "level"),
    script:
        "../scripts/table.py"


rule learning_curve:
    input:
        unpack(job_input("learning_curve")),
    output:
        res("curves/{dataset}/{image}/{kind}.json"),
    log:
        res("logs/learning_curve/{dataset}/{image}/{kind}.log"),
    benchmark:
        res("benchmarks/learning_curve/{dataset}/{image}/{kind}.tsv")
    conda:
        "../envs/dip.yaml"
    threads: FIT_RES["threads"]
    resources:
        mem_mb=job_resource("learning_curve", "mem_mb"),
        runtime=FIT_RES["runtime"],
        gpu=FIT_RES["gpu"],
    params:
        spec=job_param("learning_curve", "spec"),
    script:
        "../scripts/learning_curve.py"


rule figure_learning_curves:
    input:
        PLAN.learning_curve_files(),
    output:
        png=report(
            res("figures/learning_curves.png"),
            caption="../report/learning_curves.rst",
            category="Figures",
            subcategory="Learning curves",
            labels={"figure": "Fig. 2: learning curves"},
        ),
        pdf=res("figures/learning_curves.pdf"),
    log:
        res("logs/figures/learning_curves.log"),
    localrule: True
    conda:
        "../envs/dip.yaml"
    script:
        "../scripts/figure_learning_curves.py"


rule figure_psnr_curves:
    input:
        unpack(job_input("figure_psnr_curves")),
    output:
        png=report(
            res("figures/{dataset}/denoise_{level}_psnr_curves.png"),
            caption="../report/psnr_curves.rst",
            category="Figures",
            subcategory="{dataset}",
            labels={"figure": "PSNR along the fit", "level": "{level}"},
        ),
        pdf=res("figures/{dataset}/denoise_{level}_psnr_curves.pdf"),
    log:
        res("logs/figures/{dataset}/denoise_{level}_psnr_curves.log"),
    localrule: True
    conda:
        "../envs/dip.yaml"
    params:
        images=job_param("figure_psnr_curves", "images"),
    script:
        "../scripts/figure_psnr_curves.py"


rule figure_grid:
    input:
        unpack(job_input("figure_grid")),
    output:
        png=report(
            res("figures/{dataset}/{task}_{level}_grid.png"),
            caption="../report/grid.rst",
            category="Figures",
            subcategory="{dataset}",
            labels={"figure": "images", "task": "{task}", "level": "{level}"},
        ),
        pdf=res("figures/{dataset}/{task}_{level}_grid.pdf"),
    log:
        res("logs/figures/{dataset}/{task}_{level}_grid.log"),
    localrule: True
    conda:
        "../envs/dip.yaml"
    params:
        plan=job_param("figure_grid", "plan"),
        level=job_param("figure_grid", "level"),
    script:
        "../scripts/figure_grid.py"


rule figure_psnr:
    input:
        job_input("figure_psnr"),
    output:
        png=report(
            res("figures/{dataset}/{task}_{level}_psnr.png"),
            caption="../report/psnr_per_method.rst",
            category="Figures",
            subcategory="{dataset}",
            labels={"figure": "PSNR per method", "task": "{task}", "level": "{level}"},
        ),
        pdf=res("figures/{dataset}/{task}_{level}_psnr.pdf"),
    log:
        res("logs/figures/{dataset}/{task}_{level}_psnr.log"),
    localrule: True
    conda:
        "../envs/dip.yaml"
    params:
        level=job_param("figure_psnr", "level"),
    script:
        "../scripts/figure_psnr.py"
