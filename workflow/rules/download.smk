# Stage 1: download the benchmark files the config needs, one job per benchmark folder, from the manifest
# (relative path + sha256) under `download_base_url`. pooch checks every hash; a mismatch leaves no file.
# The base URL is read from the config inside the job (not a param), so pointing it at a mirror re-runs nothing.


for _key, _files in DOWNLOAD_GROUPS.items():

    rule:
        name:
            f"download_{_key}"
        output:
            [res_resource(f) for f in _files],
        log:
            res(f"logs/download/{_key}.log"),
        localrule: True
        conda:
            "../envs/dip.yaml"
        params:
            checksums=checksums(_files),
        script:
            "../scripts/download.py"
