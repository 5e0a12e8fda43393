"""The images the paper is measured on, where they come from, and how each task's inputs are made from them.

Two kinds of dataset:

* **Benchmarks** (:data:`BENCHMARKS`): the authors' project-page files -- ground truth, the released degraded inputs
  and every method's released output -- for Set5/Set14 super-resolution (x4, x8), the 9-image colour denoising set
  (sigma 25, 50) and the 11 grey images with 50% of the pixels missing. They are downloaded from a manifest (relative
  path + sha256, ``config/manifest/benchmarks.tsv``) under a base URL laid out like ``raw.githubusercontent.com``
  (:mod:`dip.data.manifest`: the manifest's one reader, :func:`~dip.data.manifest.fetch` with a hash check and
  retries).
* **Embedded photos**: scikit-image's bundled images (``astronaut``, ``chelsea``, ``coffee``, ...), which need no
  network (:func:`load_embedded`).

:func:`make_task_inputs` turns one image into what a fit sees, as the paper did: for SR the HR image cropped to a
multiple of 32 and its Pillow-Lanczos LR version; for denoising the released uint8 noisy image when there is one
(so numbers compare with the paper), seeded synthetic noise otherwise; for inpainting the mask recovered from the
released ``_masked.png`` when there is one, a seeded Bernoulli mask otherwise.
"""

from __future__ import annotations

import math
import os
import zlib
from dataclasses import dataclass, field

import numpy as np

from dip.data.manifest import DEFAULT_BASE_URL, DEFAULT_MANIFEST, PROJECT_PAGE, REPO_DATA, fetch, read_manifest
from dip.errors import DipInputError
from dip.tasks import get_task

# dip.data.degrade and dip.data.imageio (which import torch) are imported where they are used, so that reading the registry
# and the manifest -- what the workflow does when it builds its job graph -- stays fast.

__all__ = [
    "Benchmark",
    "BENCHMARKS",
    "EMBEDDED",
    "load_embedded",
    "embedded_channels",
    "load_benchmark_image",
    "TaskInputs",
    "make_task_inputs",
    "derive_seed",
    # dip.data.manifest's: the mirror folders the benchmark files lie in, and what dip.pipeline.steps.download
    # imports from here
    "PROJECT_PAGE",
    "REPO_DATA",
    "DEFAULT_BASE_URL",
    "DEFAULT_MANIFEST",
    "fetch",
    "read_manifest",
]


# --- benchmark definitions -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Benchmark:
    """One benchmark of the paper: its images, levels and files in the mirror.

    ``released[level]`` maps our method id to the file suffix of the authors' released output
    (``<image>_<suffix>.png``); ``input_suffix`` is the released degraded input (``noisy``/``masked``) if any.
    """

    name: str
    task: str
    levels: tuple
    images: tuple[str, ...]
    folders: dict  # level -> folder relative to the base URL
    released: dict  # level -> {method id: file suffix}
    read_mode: str = "auto"
    input_suffix: str | None = None
    display: dict = field(default_factory=dict)  # image id -> name printed in the paper's tables
    note: str = ""

    def folder(self, level: float) -> str:
        try:
            return self.folders[_level_key(self.levels, level)]
        except KeyError:
            raise DipInputError(
                f"benchmark {self.name!r} has no level {level!r}; it has {', '.join(map(str, self.levels))}"
            ) from None

    def file(self, level: float, image: str, suffix: str) -> str:
        """Relative path (under the base URL and under the local resources folder) of ``<image>_<suffix>.png``."""
        if image not in self.images:
            raise DipInputError(f"benchmark {self.name!r} has no image {image!r}; it has: {', '.join(self.images)}")
        return f"{self.folder(level)}/{image}_{suffix}.png"

    def gt_file(self, level: float, image: str) -> str:
        return self.file(level, image, "GT")

    def input_file(self, level: float, image: str) -> str | None:
        return self.file(level, image, self.input_suffix) if self.input_suffix else None

    def released_files(self, level: float, image: str) -> dict[str, str]:
        return {m: self.file(level, image, s) for m, s in self.released[_level_key(self.levels, level)].items()}

    def all_files(self, level: float) -> list[str]:
        """Every file of this benchmark at ``level``: GT, released input, released outputs."""
        out = []
        for image in self.images:
            out.append(self.gt_file(level, image))
            if self.input_suffix:
                out.append(self.input_file(level, image))
            out.extend(self.released_files(level, image).values())
        return out


def _level_key(levels, level):
    for known in levels:
        if math.isclose(float(known), float(level)):
            return known
    raise KeyError(level)


_SR_X4 = {
    "bicubic": "bicubic",
    "glasner": "glasner",
    "no_prior": "no_prior",
    "tv_prior": "tv_prior",
    "dip": "deep_prior",
    "lapsrn": "LapSRN",
    "srresnet_mse": "SRResNet-MSE",
}
_SR_X8 = {
    "bicubic": "bicubic",
    "selfexsr": "SelfExSR",
    "no_prior": "no_prior",
    "tv_prior": "tv_prior",
    "dip_reg003": "deep_prior_003",
    "dip": "deep_prior_005",  # the project page marks "noise reg. 0.05" as the paper's x8 result
    "lapsrn": "LapSRN",
}
_DENOISE = {"nlm": "nlm", "cbm3d": "bm3d", "dip": "deep_prior"}
_INPAINT = {"voronoi": "voronoi", "papyan": "papyan", "dip": "deep_prior"}

BENCHMARKS: dict[str, Benchmark] = {
    "set5": Benchmark(
        name="set5",
        task="sr",
        levels=(4, 8),
        images=("baby", "bird", "butterfly", "head", "woman"),
        folders={4: f"{PROJECT_PAGE}/SR/Set5/x4", 8: f"{PROJECT_PAGE}/SR/Set5/x8"},
        released={4: _SR_X4, 8: _SR_X8},
        read_mode="rgb",
        note="Set5 (Bevilacqua et al. 2012); GT as in the LapSRN viewer, cropped to a multiple of the factor",
    ),
    "set14": Benchmark(
        name="set14",
        task="sr",
        levels=(4, 8),
        images=(
            "baboon", "barbara", "bridge", "coastguard", "comic", "face", "flowers", "foreman", "lenna", "man",
            "monarch", "pepper", "ppt3", "zebra",
        ),
        folders={4: f"{PROJECT_PAGE}/SR/Set14/x4", 8: f"{PROJECT_PAGE}/SR/Set14/x8"},
        released={4: _SR_X4, 8: _SR_X8},
        read_mode="rgb",
        note="Set14 (Zeyde et al. 2010); GT as in the LapSRN viewer, cropped to a multiple of the factor",
    ),
    "color9": Benchmark(
        name="color9",
        task="denoise",
        levels=(25, 50),
        images=("F16", "baboon", "hill", "kodim01", "kodim02", "kodim03", "kodim12", "lena", "peppers"),
        folders={25: f"{PROJECT_PAGE}/Denoising/Color/25", 50: f"{PROJECT_PAGE}/Denoising/Color/50"},
        released={25: _DENOISE, 50: _DENOISE},
        input_suffix="noisy",
        display={"hill": "House"},
        note="the CBM3D colour test set; the project page's 'hill' files are the House image",
    ),
    "gray11": Benchmark(
        name="gray11",
        task="inpaint",
        levels=(0.5,),
        images=(
            "barbara", "boat", "house", "Lena512", "peppers256", "Cameraman256", "couple", "fingerprint", "hill",
            "man", "montage",
        ),
        folders={0.5: f"{PROJECT_PAGE}/Reconstruction/Gray/50p"},
        released={0.5: _INPAINT},
        input_suffix="masked",
        display={
            "barbara": "Barbara", "boat": "Boat", "house": "House", "Lena512": "Lena", "peppers256": "Peppers",
            "Cameraman256": "C.man", "couple": "Couple", "fingerprint": "Finger", "hill": "Hill", "man": "Man",
            "montage": "Montage",
        },
        note="the 11 grey images of the paper's Table 1, 50% of the pixels missing (masked = 0)",
    ),
}

# scikit-image's bundled photos: real scenes that need no download, for quick CPU runs and offline tests.
EMBEDDED = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle", "camera", "immunohistochemistry")
EMBEDDED_GREY = ("camera",)  # the others are RGB


def embedded_channels(name: str) -> int:
    """Channels of an embedded photo as :func:`load_embedded` returns it (1 grey, 3 colour)."""
    return 1 if name in EMBEDDED_GREY else 3


def display_name(dataset: str, image: str) -> str:
    bench = BENCHMARKS.get(dataset)
    return bench.display.get(image, image) if bench else image


# --- loading images ------------------------------------------------------------------------------------------------


def load_embedded(name: str, size: int | None = None, *, multiple: int = 32) -> np.ndarray:
    """A scikit-image bundled photo as a library image (no network).

    With ``size`` the photo is centre-cropped to a square and resized to ``size`` x ``size`` with Pillow's Lanczos
    filter (the whole scene at a small size: a quick CPU run still sees a natural image, not a texture patch); without
    it, it is centre-cropped to a multiple of ``multiple``.
    """
    import skimage.data
    from PIL import Image

    if name not in EMBEDDED:
        raise DipInputError(f"unknown embedded photo {name!r}; choose one of: {', '.join(EMBEDDED)}")
    if name == "motorcycle":
        arr = skimage.data.stereo_motorcycle()[0]
    else:
        arr = getattr(skimage.data, name)()
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    from dip.data.imageio import centre_crop, crop_to_multiple

    if size is None:
        img = arr.astype(np.float32) / 255.0
        img = img[..., None] if img.ndim == 2 else img
        return crop_to_multiple(img, multiple)[0]
    if size < 8:
        raise DipInputError(f"the embedded photo size must be >= 8 px, got {size}")
    pil = Image.fromarray(np.ascontiguousarray(centre_crop(arr, min(arr.shape[:2]))))
    pil = pil.resize((int(size), int(size)), Image.LANCZOS)
    img = np.asarray(pil, dtype=np.float32) / np.float32(255.0)
    return img[..., None] if img.ndim == 2 else img


def load_benchmark_image(path: str | os.PathLike, dataset: str) -> np.ndarray:
    """Read a benchmark file with the dataset's channel convention (RGB for SR, as released otherwise)."""
    from dip.data.imageio import read_image

    bench = BENCHMARKS.get(dataset)
    mode = bench.read_mode if bench else "auto"
    return read_image(path, mode=mode, alpha="ignore")


# --- task inputs ---------------------------------------------------------------------------------------------------


def degradation(spec: dict, gt_sha256: str | None) -> dict:
    """What defines one image's task inputs: the degrade job's spec (source, dataset, benchmark, image, size, task,
    level, seed) and the ground truth's sha256 (a benchmark's download; None for an embedded photo, which its name and
    size define). The degrade job records it beside the inputs, each fit and baseline copies it into its record, and
    the workflow's plan compares it with its own (dip.pipeline.pins): a changed degradation re-runs the fit."""
    import json

    return json.loads(json.dumps({**dict(spec), "gt_sha256": gt_sha256}, sort_keys=True, default=str))


def derive_seed(base: int, *parts) -> int:
    """A stable per-(image, task, level) seed from ``base`` (crc32 of the parts; the same on every machine)."""
    key = "/".join(str(p) for p in parts).encode()
    return (int(base) * 1_000_003 + zlib.crc32(key)) % (2**31 - 1)


@dataclass
class TaskInputs:
    """What one fit gets, and what it is scored against.

    ground_truth: the reference the output is scored against, in its full frame (SR: the released GT, which may be
        larger than the multiple-of-32 crop DIP restores -- scoring puts outputs back in the centre).
    observation: the degraded image (noisy / LR / masked).
    fit_target: the ground truth the fit can log PSNR against (SR: the HR crop; otherwise = ground_truth).
    mask: inpainting only, float32 (H, W, 1|C), 1 = known.
    """

    ground_truth: np.ndarray
    observation: np.ndarray
    fit_target: np.ndarray
    mask: np.ndarray | None = None
    info: dict = field(default_factory=dict)


def make_task_inputs(
    task: str,
    level: float,
    ground_truth: np.ndarray,
    *,
    released_input: np.ndarray | None = None,
    seed: int = 0,
    sr_multiple: int = 32,
) -> TaskInputs:
    """Make the degraded input of ``task`` at ``level`` from ``ground_truth`` as the paper did.

    * ``sr``: HR = GT centre-cropped to a multiple of ``sr_multiple`` (32); LR = Pillow Lanczos of the HR by ``level``.
    * ``denoise``: the released uint8 noisy image when given (``released_input``), else GT + N(0, level/255) with
      ``seed``, quantised to uint8 like the released files.
    * ``inpaint``: the mask recovered from the released masked image (missing = 0) when given, else a Bernoulli mask
      with ``level`` missing (``seed``, shared by all channels); observation = GT * mask.
    """
    from dip.data import degrade

    get_task(task, levelled=True)  # an unknown task fails here, with the choices
    gt = np.asarray(ground_truth, dtype=np.float32)
    info: dict = {"task": task, "level": level, "seed": int(seed)}
    if task == "sr":
        hr, lr = degrade.make_lr(gt, int(level), multiple=sr_multiple)
        info["hr_shape"] = list(hr.shape)
        return TaskInputs(ground_truth=gt, observation=lr, fit_target=hr, info=info)
    if task == "denoise":
        if released_input is not None:
            noisy = np.asarray(released_input, dtype=np.float32)
            if noisy.shape != gt.shape:
                raise DipInputError(f"the released noisy image is {noisy.shape}, the ground truth {gt.shape}")
            info["source"] = "released noisy image"
        else:
            noisy = degrade.add_gaussian_noise(gt, float(level), seed, quantize=True)
            info["source"] = "synthetic Gaussian noise (seeded, uint8)"
        return TaskInputs(ground_truth=gt, observation=noisy, fit_target=gt, info=info)
    # inpaint (the table has no other task with levels)
    if released_input is not None:
        masked = np.asarray(released_input, dtype=np.float32)
        if masked.shape != gt.shape:
            raise DipInputError(f"the released masked image is {masked.shape}, the ground truth {gt.shape}")
        mask = degrade.mask_from_masked(masked)
        info["source"] = "mask recovered from the released masked image"
    else:
        mask = degrade.bernoulli_mask(gt.shape[:2], float(level), seed, channels=1)
        info["source"] = "seeded Bernoulli mask"
    info["missing_fraction"] = float(1.0 - mask.mean())
    return TaskInputs(ground_truth=gt, observation=degrade.apply_mask(gt, mask), fit_target=gt, mask=mask, info=info)
