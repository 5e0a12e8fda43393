# Stage 5: the paper's tables (Markdown, LaTeX, CSV; the paper's rows beside ours) and figures (PNG + PDF).
# Each reads the scores of its own (dataset, task, level), the fit records and the restored images only: deleting
# them (or --forcerun table figure_grid ...) regenerates them without any refit.


rule table:
    input:
        unpack(job_input("table")),
    output:
        md=PATHS.table(PATHS.level_key())["md"],
        tex=PATHS.table(PATHS.level_key())["tex"],
        csv=report(
            PATHS.table(PATHS.level_key())["csv"],
            caption="../report/table.rst",
            category="Tables",
            subcategory="{dataset}",
            labels={"task": "{task}", "level": "{level}"},
        ),
    log:
        PATHS.log("table", PATHS.level_key()),
    localrule: True
    conda:
        "../envs/dip.yaml"
    params:
        job=job_params("table"),
    shell:
        JOB


rule figure_learning_curves:
    input:
        PLAN.learning_curve_files(),
    output:
        png=report(
            PATHS.figure("learning_curves")["png"],
            caption="../report/learning_curves.rst",
            category="Figures",
            subcategory="Learning curves",
            labels={"figure": "Fig. 2: learning curves"},
        ),
        pdf=PATHS.figure("learning_curves")["pdf"],
    log:
        PATHS.log("figures", "learning_curves"),
    localrule: True
    conda:
        "../envs/dip.yaml"
    params:
        job=job_params("figure_learning_curves"),
    shell:
        JOB


rule figure_psnr_curves:
    input:
        unpack(job_input("figure_psnr_curves")),
    output:
        png=report(
            PATHS.figure(PATHS.figure_key("psnr_curves", t="denoise"))["png"],
            caption="../report/psnr_curves.rst",
            category="Figures",
            subcategory="{dataset}",
            labels={"figure": "PSNR along the fit", "level": "{level}"},
        ),
        pdf=PATHS.figure(PATHS.figure_key("psnr_curves", t="denoise"))["pdf"],
    log:
        PATHS.log("figures", PATHS.figure_key("psnr_curves", t="denoise")),
    localrule: True
    conda:
        "../envs/dip.yaml"
    params:
        job=job_params("figure_psnr_curves"),
    shell:
        JOB


rule figure_grid:
    input:
        unpack(job_input("figure_grid")),
    output:
        png=report(
            PATHS.figure(PATHS.figure_key("grid"))["png"],
            caption="../report/grid.rst",
            category="Figures",
            subcategory="{dataset}",
            labels={"figure": "images", "task": "{task}", "level": "{level}"},
        ),
        pdf=PATHS.figure(PATHS.figure_key("grid"))["pdf"],
    log:
        PATHS.log("figures", PATHS.figure_key("grid")),
    localrule: True
    conda:
        "../envs/dip.yaml"
    params:
        job=job_params("figure_grid"),
    shell:
        JOB


rule figure_psnr:
    input:
        unpack(job_input("figure_psnr")),
    output:
        png=report(
            PATHS.figure(PATHS.figure_key("psnr"))["png"],
            caption="../report/psnr_per_method.rst",
            category="Figures",
            subcategory="{dataset}",
            labels={"figure": "PSNR per method", "task": "{task}", "level": "{level}"},
        ),
        pdf=PATHS.figure(PATHS.figure_key("psnr"))["pdf"],
    log:
        PATHS.log("figures", PATHS.figure_key("psnr")),
    localrule: True
    conda:
        "../envs/dip.yaml"
    params:
        job=job_params("figure_psnr"),
    shell:
        JOB
