# Stage 2: the degraded inputs, made as the paper made them (dip.data.benchmarks.make_task_inputs):
# SR: HR cropped to a multiple of 32 + LR by Pillow Lanczos; denoising: the released uint8 noisy image, else seeded
# noise; inpainting: the mask recovered from the released `_masked.png`, else a seeded Bernoulli mask.


rule degrade_denoise:
    input:
        unpack(job_input("degrade_denoise")),
    output:
        **PATHS.degraded(t="denoise"),
    log:
        PATHS.log("degrade", PATHS.image_key(t="denoise")),
    wildcard_constraints:
        level=r"sigma\d+",
    conda:
        "../envs/dip.yaml"
    params:
        job=job_params("degrade_denoise"),
    shell:
        JOB


rule degrade_sr:
    input:
        unpack(job_input("degrade_sr")),
    output:
        **PATHS.degraded(t="sr"),
    log:
        PATHS.log("degrade", PATHS.image_key(t="sr")),
    wildcard_constraints:
        level=r"x\d+",
    conda:
        "../envs/dip.yaml"
    params:
        job=job_params("degrade_sr"),
    shell:
        JOB


rule degrade_inpaint:
    input:
        unpack(job_input("degrade_inpaint")),
    output:
        **PATHS.degraded(t="inpaint"),
    log:
        PATHS.log("degrade", PATHS.image_key(t="inpaint")),
    wildcard_constraints:
        level=r"missing\d+",
    conda:
        "../envs/dip.yaml"
    params:
        job=job_params("degrade_inpaint"),
    shell:
        JOB
