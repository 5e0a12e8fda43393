"""The catalogue of the paper's other experiments (torch-free): what each one is, which of the reference repository's
files it reads, which images it writes, and the networks of the architecture comparison. The runners
(:mod:`dip.experiments.runners`) and the workflow's planner (:mod:`dip.pipeline`) both read these tables.
"""

from __future__ import annotations

from dip.data.manifest import REPO_DATA

__all__ = ["DATA_FILES", "EXPERIMENTS", "EXPERIMENT_NAMES", "PANELS", "ARCHITECTURES", "DEFAULT_ARCHITECTURES"]

# The reference repository's example inputs (paths in the benchmark mirror / raw.githubusercontent.com layout).
DATA_FILES = {
    "snail": f"{REPO_DATA}/denoising/snail.jpg",
    "kate": f"{REPO_DATA}/inpainting/kate.png",
    "kate_mask": f"{REPO_DATA}/inpainting/kate_mask.png",
    "vase": f"{REPO_DATA}/inpainting/vase.png",
    "vase_mask": f"{REPO_DATA}/inpainting/vase_mask.png",
    "library": f"{REPO_DATA}/inpainting/library.png",
    "library_mask": f"{REPO_DATA}/inpainting/library_mask.png",
    "cave_flash": f"{REPO_DATA}/flash_no_flash/cave01_00_flash.jpg",
    "cave_noflash": f"{REPO_DATA}/flash_no_flash/cave01_01_noflash.jpg",
    "zebra_crop": f"{REPO_DATA}/sr/zebra_crop.png",
    "building": f"{REPO_DATA}/feature_inversion/building.jpg",
    "monkey": f"{REPO_DATA}/feature_inversion/monkey.jpg",
}

# name (as in the config: paper_experiments.<name>) -> (title, the paper's figure, data files read, preset). The
# pre-image reads the images of its config entry (default: building).
EXPERIMENTS: dict[str, tuple[str, str, tuple[str, ...], str | None]] = {
    "jpeg": ("JPEG / blind restoration: good at ~2400 steps, overfits by ~50K", "Fig. 3", ("snail",), "jpeg"),
    "inpaint_text": ("Text inpainting vs biharmonic", "Fig. 7 (top)", ("kate", "kate_mask"), "inpaint_text"),
    "inpaint_hole": ("Large-hole inpainting, meshgrid input, vs biharmonic", "Fig. 6", ("vase", "vase_mask"),
                     "inpaint_hole"),
    "architectures": ("Inpainting with different depths and architectures", "Fig. 8",
                      ("library", "library_mask"), "inpaint-library"),
    "flash": ("Flash / no-flash reconstruction vs joint bilateral", "Fig. 10", ("cave_flash", "cave_noflash"),
              "flash"),
    "sr_prior": ("Super-resolution x4: no prior / TV prior / DIP", "supp. material", ("zebra_crop",), None),
    "preimage": ("Natural pre-image of AlexNet features: DIP vs TV", "Fig. 9", ("building",), None),
}
EXPERIMENT_NAMES = tuple(EXPERIMENTS)

# The images each experiment job writes (besides record.json), in figure order.
PANELS = {
    "inpaint_text": ("gt", "input", "biharmonic", "dip"),
    "inpaint_hole": ("gt", "input", "biharmonic", "dip"),
    "flash": ("flash", "noflash", "joint_bilateral", "dip"),
    "sr_prior": ("hr", "lr", "bicubic", "no_prior", "tv_prior", "dip"),
    "preimage": ("target", "tv", "dip"),
}
ARCHITECTURES: dict[str, tuple[str, dict]] = {
    **{
        f"depth{d}": (f"Hourglass, depth {d}, no skips (authors' skip_depth{d})", {"net": f"skip_depth{d}"})
        for d in range(2, 7)
    },
    "depth6_skips": ("Hourglass, depth 6, with 4-channel skip connections",
                     {"net": "skip_depth6", "net_kwargs": {"channels_skip": [4] * 6}}),
    "encoder_decoder": ("Encoder-decoder, 5 levels of 128 channels, no skips",
                        {"net": "encoder_decoder", "net_kwargs": {"depth": 5, "channels": 128,
                                                                  "upsample": "nearest"}}),
    "unet": ("U-Net (feature scale 8, 5 levels, skips)",
             {"net": "unet", "net_kwargs": {"feature_scale": 8, "more_layers": 1}, "lr": 0.001}),
    "resnet": ("ResNet (8 blocks of 32 channels, full resolution)",
               {"net": "resnet", "net_kwargs": {"num_blocks": 8, "num_channels": 32}, "lr": 0.001}),
}
DEFAULT_ARCHITECTURES = tuple(ARCHITECTURES)
