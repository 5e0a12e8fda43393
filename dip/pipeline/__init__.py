"""The workflow's plan: which jobs the Snakemake DAG holds, from the validated config (torch-free)."""
