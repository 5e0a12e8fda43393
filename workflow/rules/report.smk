# Stage 5: the paper's tables (Markdown, LaTeX, CSV; the paper's rows beside ours) and figures (PNG + PDF).
# Each reads the scores of its own (dataset, task, level), the fit records and the restored images only: deleting
# them (or --forcerun table figure_grid ...) regenerates them without any refit.


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
        job=job_params("table"),
    shell:
        JOB


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
    params:
        job=job_params("figure_learning_curves"),
    shell:
        JOB


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
        job=job_params("figure_psnr_curves"),
    shell:
        JOB


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
        job=job_params("figure_grid"),
    shell:
        JOB


rule figure_psnr:
    input:
        unpack(job_input("figure_psnr")),
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
        job=job_params("figure_psnr"),
    shell:
        JOB
