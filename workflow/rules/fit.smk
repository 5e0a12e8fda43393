# Stage 3: one DIP fit per (dataset, image, task, level, seed): the restored PNG (averaged output when the preset
# averages), the raw output, and a JSON record (config, seed, versions, device, time, PSNR history, the sha256 of what
# it read). When paper_experiments.early_stopping is set, every fit also records ES-WMV (stop=False): the JSON holds
# the detected step and <image>_seed<N>_es.png the output there, so the "DIP + early stop" rows need no second fit.
# With pack_fits > 1 (config), fits of one size are fitted together in one job (fit_dip_pack) and unpack_fit copies
# each fit's files to the paths below; the other fits stay lone fit_dip jobs. Same files either way.
# A fit re-runs for what defines it (its spec, the content of its inputs), not for file dates: dip.pipeline.pins.


rule fit_dip:
    input:
        unpack(job_input("fit_dip")),
    output:
        **PLAN.fit_outputs(),
    log:
        PATHS.log("fit", PATHS.run_key(method="dip")),
    benchmark:
        PATHS.benchmark("fit", PATHS.run_key(method="dip"))
    conda:
        "../envs/dip.yaml"
    threads: FIT_RES["threads"]
    resources:
        mem_mb=job_resource("fit_dip", "mem_mb"),
        runtime=job_resource("fit_dip", "runtime"),
        gpu=FIT_RES["gpu"],
    params:
        job=job_params("fit_dip"),
    shell:
        JOB


rule fit_dip_pack:
    input:
        unpack(job_input("fit_dip_pack")),
    output:
        directory(PATHS.pack()),
    log:
        PATHS.log("fit", PATHS.pack_key()),
    benchmark:
        PATHS.benchmark("fit", PATHS.pack_key())
    conda:
        "../envs/dip.yaml"
    threads: FIT_RES["threads"]
    resources:
        mem_mb=job_resource("fit_dip_pack", "mem_mb"),
        runtime=job_resource("fit_dip_pack", "runtime"),
        gpu=FIT_RES["gpu"],
    params:
        job=job_params("fit_dip_pack"),
    shell:
        JOB


rule unpack_fit:
    input:
        pack=packed_fit,
    output:
        **PLAN.fit_outputs(),
    log:
        PATHS.log("fit", PATHS.run_key(method="dip") + ".unpack"),
    localrule: True
    conda:
        "../envs/dip.yaml"
    params:
        job=job_params("unpack_fit"),
    shell:
        JOB


# A packed fit's files come from its pack; a lone fit's pack folder is made by nothing, so fit_dip makes it.
ruleorder: unpack_fit > fit_dip


rule learning_curve:
    input:
        unpack(job_input("learning_curve")),
    output:
        PATHS.curve(),
    log:
        PATHS.log("learning_curve", PATHS.curve_key()),
    benchmark:
        PATHS.benchmark("learning_curve", PATHS.curve_key())
    conda:
        "../envs/dip.yaml"
    threads: FIT_RES["threads"]
    resources:
        mem_mb=job_resource("learning_curve", "mem_mb"),
        runtime=job_resource("learning_curve", "runtime"),
        gpu=FIT_RES["gpu"],
    params:
        job=job_params("learning_curve"),
    shell:
        JOB
