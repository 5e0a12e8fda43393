# The paper's other experiments (config `paper_experiments:`), and DIP + early stopping on the core experiments.
# Each experiment: one job that runs it (dip.experiments) -> images + record.json, one job that draws its figure and
# writes its table. The architecture comparison runs one job per network. The plan (which files exist) comes from
# dip.pipeline.plan; inputs are the reference repository's data/ files, downloaded like the benchmarks.
# Include after common.smk and before score.smk (metrics.csv takes the `dip_es` score files).

from dip.pipeline.plan import build_plan

XP = build_plan(config.get("paper_experiments"), R, RES)
XP_DATA = XP.data_files()
XP_MANIFEST = (
    read_manifest(config.get("manifest", "config/manifest/benchmarks.tsv"))
    if XP_DATA
    else {}
)
XP_ES_KEYS = XP.es_keys(config["experiments"], images_of)
# Recorded by every core DIP fit (fit.smk) when any experiment has early stopping: no second fit per image.
ES_SETTINGS = XP.es_settings() if XP_ES_KEYS else None
for _name, _why in XP.skipped.items():
    print(f"paper_experiments: skipping {_name}: {_why}", file=sys.stderr)


if XP_DATA:

    rule download_experiment_data:
        output:
            [res_resource(f) for f in XP_DATA],
        log:
            res("logs/download/experiment_data.log"),
        localrule: True
        conda:
            "../envs/dip.yaml"
        params:
            checksums={f: XP_MANIFEST[f] for f in XP_DATA},
        script:
            "../scripts/download.py"


for _name in XP.names:
    if _name != "architectures":

        rule:
            name:
                f"experiment_{_name}"
            input:
                **XP.inputs(_name),
            output:
                XP.outputs(_name),
                record=XP.record(_name),
            log:
                res(f"logs/experiments/{_name}.log"),
            benchmark:
                res(f"benchmarks/experiments/{_name}.tsv")
            conda:
                "../envs/dip.yaml"
            threads: FIT_RES["threads"]
            resources:
                mem_mb=FIT_RES["mem_mb"],
                runtime=FIT_RES["runtime"],
                gpu=FIT_RES["gpu"],
            params:
                name=_name,
                spec=XP.specs[_name],
            script:
                "../scripts/experiment.py"

    rule:
        name:
            f"experiment_{_name}_report"
        input:
            XP.outputs(_name),
            record=XP.record(_name),
        output:
            png=report(
                XP.report_files(_name)["png"],
                caption="../report/experiments.rst",
                category="Experiments",
                labels={"experiment": _name},
            ),
            pdf=XP.report_files(_name)["pdf"],
            md=XP.report_files(_name)["md"],
            csv=report(
                XP.report_files(_name)["csv"],
                caption="../report/experiments.rst",
                category="Experiments",
                labels={"experiment": f"{_name} (table)"},
            ),
        log:
            res(f"logs/experiments/{_name}_report.log"),
        conda:
            "../envs/dip.yaml"
        script:
            "../scripts/experiment_report.py"


if "architectures" in XP.names:

    rule experiment_architecture:
        input:
            **XP.inputs("architectures"),
        output:
            png=res("experiments/architectures/net_{arch}.png"),
            json=res("experiments/architectures/net_{arch}.json"),
        log:
            res("logs/experiments/architectures/{arch}.log"),
        benchmark:
            res("benchmarks/experiments/architectures/{arch}.tsv")
        wildcard_constraints:
            arch="|".join(XP.architectures),
        conda:
            "../envs/dip.yaml"
        threads: FIT_RES["threads"]
        resources:
            mem_mb=FIT_RES["mem_mb"],
            runtime=FIT_RES["runtime"],
            gpu=FIT_RES["gpu"],
        params:
            spec=XP.specs["architectures"],
        script:
            "../scripts/experiment_architecture.py"

    rule experiment_architectures:
        input:
            **XP.inputs("architectures"),
            pngs=[
                res(f"experiments/architectures/net_{a}.png") for a in XP.architectures
            ],
            jsons=[
                res(f"experiments/architectures/net_{a}.json")
                for a in XP.architectures
            ],
        output:
            gt=res("experiments/architectures/gt.png"),
            input=res("experiments/architectures/input.png"),
            record=XP.record("architectures"),
        log:
            res("logs/experiments/architectures.log"),
        conda:
            "../envs/dip.yaml"
        params:
            spec=XP.specs["architectures"],
        script:
            "../scripts/experiment_architectures_summary.py"


if XP_ES_KEYS:

    for _d, _t, _lv in XP.es_levels(config["experiments"], images_of):
        _runs = [(k[3], k[4]) for k in XP_ES_KEYS if k[:3] == (_d, _t, _lv)]

        rule:
            name:
                f"score_es_{_d}_{_t}_{_lv}"
            input:
                gt=[res(f"inputs/{_d}/{_t}/{_lv}/{i}/gt.png") for i in images_of(_d)],
                pngs=[restored(_d, _t, _lv, "dip", i, s, "_es.png") for i, s in _runs],
                jsons=[restored(_d, _t, _lv, "dip", i, s, ".json") for i, s in _runs],
            output:
                res(f"scores/extra/{_d}/{_t}_{_lv}_es.csv"),
            log:
                res(f"logs/score/{_d}/{_t}_{_lv}_es.log"),
            conda:
                "../envs/dip.yaml"
            params:
                dataset=_d,
                task=_t,
                images=images_of(_d),
                runs=_runs,
                level=parse_level(_t, _lv),
            script:
                "../scripts/score_es.py"

    rule early_stop_table:
        input:
            [restored(d, t, lv, "dip", i, s, ".json") for d, t, lv, i, s in XP_ES_KEYS],
        output:
            md=res("tables/experiments/early_stopping.md"),
            csv=report(
                res("tables/experiments/early_stopping.csv"),
                caption="../report/early_stopping.rst",
                category="Experiments",
                labels={"experiment": "early stopping"},
            ),
        log:
            res("logs/experiments/early_stopping_table.log"),
        conda:
            "../envs/dip.yaml"
        script:
            "../scripts/early_stop_table.py"


rule experiments:
    input:
        XP.targets(config["experiments"], images_of),
