# The paper's other experiments (config `paper_experiments:`), and the early-stopping table of the core experiments.
# Each experiment: one job that runs it (dip.pipeline.run_experiment) -> images + record.json, one job that draws its
# figure and writes its table. The architecture comparison runs one job per network. Which experiments run and the
# files they read (the reference repository's data/, downloaded like the benchmarks) come from the plan.


for _name in PLAN.experiment_names:
    if _name != "architectures":

        rule:
            name:
                f"experiment_{_name}"
            input:
                **pinned(PLAN.experiment_inputs(_name)),
            output:
                PLAN.experiment_outputs(_name),
                record=PLAN.experiment_record(_name),
            log:
                PATHS.log("experiments", _name),
            benchmark:
                PATHS.benchmark("experiments", _name)
            conda:
                "../envs/dip.yaml"
            threads: FIT_RES["threads"]
            resources:
                mem_mb=FIT_RES["mem_mb"],
                runtime=FIT_RES["runtime"],
                gpu=FIT_RES["gpu"],
            params:
                job=job_params(f"experiment_{_name}"),
            shell:
                JOB

    rule:
        name:
            f"experiment_{_name}_report"
        input:
            PLAN.experiment_outputs(_name),
            record=PLAN.experiment_record(_name),
        output:
            png=report(
                PLAN.experiment_report(_name)["png"],
                caption="../report/experiments.rst",
                category="Experiments",
                labels={"experiment": _name},
            ),
            pdf=PLAN.experiment_report(_name)["pdf"],
            md=PLAN.experiment_report(_name)["md"],
            csv=report(
                PLAN.experiment_report(_name)["csv"],
                caption="../report/experiments.rst",
                category="Experiments",
                labels={"experiment": f"{_name} (table)"},
            ),
        log:
            PATHS.log("experiments", f"{_name}_report"),
        conda:
            "../envs/dip.yaml"
        params:
            job=job_params(f"experiment_{_name}_report"),
        shell:
            JOB


if PLAN.architectures:

    rule experiment_architecture:
        input:
            **pinned(PLAN.experiment_inputs("architectures")),
        output:
            **PATHS.architecture(),
        log:
            PATHS.log("experiments", "architectures", "{arch}"),
        benchmark:
            PATHS.benchmark("experiments", "architectures", "{arch}")
        wildcard_constraints:
            arch="|".join(PLAN.architectures),
        conda:
            "../envs/dip.yaml"
        threads: FIT_RES["threads"]
        resources:
            mem_mb=FIT_RES["mem_mb"],
            runtime=FIT_RES["runtime"],
            gpu=FIT_RES["gpu"],
        params:
            job=job_params("experiment_architecture"),
        shell:
            JOB

    rule experiment_architectures:
        input:
            **pinned(PLAN.get("experiment_architectures").input),
        output:
            **PLAN.get("experiment_architectures").output,
        log:
            PATHS.log("experiments", "architectures"),
        conda:
            "../envs/dip.yaml"
        params:
            job=job_params("experiment_architectures"),
        shell:
            JOB


if PLAN.es_keys:

    rule early_stop_table:
        input:
            **PLAN.get("early_stop_table").input,
        output:
            md=PATHS.early_stopping_table()["md"],
            csv=report(
                PATHS.early_stopping_table()["csv"],
                caption="../report/early_stopping.rst",
                category="Experiments",
                labels={"experiment": "early stopping"},
            ),
        log:
            PATHS.log("experiments", "early_stopping_table"),
        conda:
            "../envs/dip.yaml"
        params:
            job=job_params("early_stop_table"),
        shell:
            JOB


rule experiments:
    input:
        PLAN.get("experiments").input,
