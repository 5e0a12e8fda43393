# Stage 3: one DIP fit per (dataset, image, task, level, seed): the restored PNG (averaged output when the preset
# averages), the raw output, and a JSON record (config, seed, versions, device, time, PSNR history).
# Rerun triggers: a change of the DIP settings in the config (params) or of workflow/scripts/fit.py (code) re-runs
# fits; a change in the dip package does not (see README: --rerun-triggers, --list-changes, --touch).


rule fit_dip:
    input:
        unpack(task_inputs),
    output:
        png=res("restored/{dataset}/{task}/{level}/dip/{image}_seed{seed}.png"),
        raw=res("restored/{dataset}/{task}/{level}/dip/{image}_seed{seed}_raw.png"),
        json=res("restored/{dataset}/{task}/{level}/dip/{image}_seed{seed}.json"),
    log:
        res("logs/fit/{dataset}/{task}/{level}/dip/{image}_seed{seed}.log"),
    benchmark:
        res("benchmarks/fit/{dataset}/{task}/{level}/dip/{image}_seed{seed}.tsv")
    conda:
        "../envs/dip.yaml"
    threads: FIT_RES["threads"]
    resources:
        mem_mb=FIT_RES["mem_mb"],
        runtime=FIT_RES["runtime"],
        gpu=FIT_RES["gpu"],
    params:
        spec=fit_spec,
    script:
        "../scripts/fit.py"
