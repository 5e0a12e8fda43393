# Stage 3 (beside the fits): the non-DIP methods (dip.baselines): bicubic, no prior, TV prior, CBM3D, NLM,
# biharmonic. Same inputs and output layout as the DIP fits, one job per (dataset, image, task, level, method, seed),
# pinned like them by their spec (dip.pipeline.pins).


rule baseline:
    input:
        unpack(job_input("baseline")),
    output:
        png=PATHS.restored(),
        json=PATHS.restored(suffix=".json"),
    log:
        PATHS.log("baseline", PATHS.run_key()),
    benchmark:
        PATHS.benchmark("baseline", PATHS.run_key())
    conda:
        "../envs/dip.yaml"
    threads: BASE_RES["threads"]
    resources:
        mem_mb=BASE_RES["mem_mb"],
        runtime=BASE_RES["runtime"],
    params:
        job=job_params("baseline"),
    shell:
        JOB
