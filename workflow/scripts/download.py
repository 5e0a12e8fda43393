"""Shim: download one benchmark folder (dip.data.benchmarks.fetch) from config `download_base_url`, checking sha256."""

from _shim import logged

with logged(snakemake):
    from dip.data.benchmarks import fetch

    cfg = snakemake.config
    base_url = cfg.get("download_base_url", "https://raw.githubusercontent.com/")
    retries, timeout = int(cfg.get("download_retries", 3)), float(cfg.get("download_timeout", 60))
    print(f"base URL: {base_url}")
    for out, (rel, digest) in zip(snakemake.output, snakemake.params.checksums.items()):
        dest_root = out[: -len(rel)]  # the output is <resources_dir>/<rel>
        path = fetch(rel, digest, dest_root, base_url=base_url, retries=retries, timeout=timeout)
        print(f"ok {path} sha256={digest}")
