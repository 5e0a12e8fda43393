# Stage 2: the degraded inputs, made as the paper made them (dip.data.benchmarks.make_task_inputs):
# SR: HR cropped to a multiple of 32 + LR by Pillow Lanczos; denoising: the released uint8 noisy image, else seeded
# noise; inpainting: the mask recovered from the released `_masked.png`, else a seeded Bernoulli mask.


rule degrade_denoise:
    input:
        unpack(job_input("degrade_denoise")),
    output:
        gt=res("inputs/{dataset}/denoise/{level}/{image}/gt.png"),
        observation=res("inputs/{dataset}/denoise/{level}/{image}/observation.png"),
        info=res("inputs/{dataset}/denoise/{level}/{image}/inputs.json"),
    log:
        res("logs/degrade/{dataset}/denoise/{level}/{image}.log"),
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
        gt=res("inputs/{dataset}/sr/{level}/{image}/gt.png"),
        hr=res("inputs/{dataset}/sr/{level}/{image}/hr.png"),
        observation=res("inputs/{dataset}/sr/{level}/{image}/observation.png"),
        info=res("inputs/{dataset}/sr/{level}/{image}/inputs.json"),
    log:
        res("logs/degrade/{dataset}/sr/{level}/{image}.log"),
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
        gt=res("inputs/{dataset}/inpaint/{level}/{image}/gt.png"),
        mask=res("inputs/{dataset}/inpaint/{level}/{image}/mask.png"),
        observation=res("inputs/{dataset}/inpaint/{level}/{image}/observation.png"),
        info=res("inputs/{dataset}/inpaint/{level}/{image}/inputs.json"),
    log:
        res("logs/degrade/{dataset}/inpaint/{level}/{image}.log"),
    wildcard_constraints:
        level=r"missing\d+",
    conda:
        "../envs/dip.yaml"
    params:
        job=job_params("degrade_inpaint"),
    shell:
        JOB
