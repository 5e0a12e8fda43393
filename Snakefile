# The workflow's entry is workflow/Snakefile (the Snakemake catalog's layout, and what `snakedeploy` deploys); this
# file lets `snakemake` run from the repository root. An included file cannot set the default target, hence `default`.


include: "workflow/Snakefile"


rule default:
    default_target: True
    input:
        rules.all.input,
