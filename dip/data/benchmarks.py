"""The images the paper is measured on, where they come from, and how each task's inputs are made from them.

Two kinds of dataset:

* **Benchmarks** (:data:`BENCHMARKS`): the authors' project-page files -- ground truth, the released degraded inputs
  and every method's released output -- for Set5/Set14 super-resolution (x4, x8), the 9-image colour denoising set
  (sigma 25, 50) and the 11 grey images with 50% of the pixels missing. They are downloaded from a manifest (relative
  path + sha256, ``config/manifest/benchmarks.tsv``) under a base URL laid out like ``raw.githubusercontent.com``
  (:func:`fetch`, pooch with a hash check and retries).
* **Embedded photos**: scikit-image's bundled images (``astronaut``, ``chelsea``, ``coffee``, ...), which need no
  network (:func:`load_embedded`).

:func:`make_task_inputs` turns one image into what a fit sees, as the paper did: for SR the HR image cropped to a
multiple of 32 and its Pillow-Lanczos LR version; for denoising the released uint8 noisy image when there is one
(so numbers compare with the paper), seeded synthetic noise otherwise; for inpainting the mask recovered from the
released ``_masked.png`` when there is one, a seeded Bernoulli mask otherwise.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dip.errors import DipInputError
from dip.files import atomic_write
from dip.tasks import get_task

# dip.data.degrade and dip.data.imageio (which import torch) are imported where they are used, so that reading the registry
# and the manifest -- what the workflow does when it builds its job graph -- stays fast.

__all__ = [
    "PROJECT_PAGE",
    "REPO_DATA",
    "Benchmark",
    "BENCHMARKS",
    "EMBEDDED",
    "DownloadError",
    "CorruptedDownload",
    "DEFAULT_MANIFEST",
    "read_manifest",
    "manifest_from_sha256sums",
    "read_manifest_sizes",
    "write_manifest",
    "sha256sum",
    "fetch",
    "fetch_many",
    "verify_downloads",
    "load_embedded",
    "embedded_channels",
    "load_benchmark_image",
    "TaskInputs",
    "make_task_inputs",
    "derive_seed",
]

# Folders of the mirror, as laid out under https://raw.githubusercontent.com/.
PROJECT_PAGE = "DmitryUlyanov/dmitryulyanov.github.io/master/assets/deep-image-prior"
REPO_DATA = "DmitryUlyanov/deep-image-prior/master/data"

DEFAULT_BASE_URL = "https://raw.githubusercontent.com/"
DEFAULT_MANIFEST = "config/manifest/benchmarks.tsv"  # relative to the workflow's working directory


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


# --- manifest and download -----------------------------------------------------------------------------------------


class DownloadError(DipInputError):
    """A benchmark file could not be downloaded or did not match its checksum."""


def _manifest_table(path: Path) -> tuple[set[str], list[tuple[int, dict[str, str]]]]:
    """A manifest TSV's columns and its rows with their line numbers (``#`` lines are comments)."""
    if not path.is_file():
        raise DipInputError(f"manifest {path} not found")
    with path.open(newline="") as fh:
        reader = csv.DictReader((line for line in fh if not line.startswith("#")), delimiter="\t")
        return set(reader.fieldnames or ()), list(enumerate(reader, start=2))


def read_manifest(path: str | os.PathLike) -> dict[str, str]:
    """Read a manifest TSV (header ``path<TAB>sha256``) into ``{relative path: sha256}``."""
    path = Path(path)
    columns, rows = _manifest_table(path)
    if not {"path", "sha256"} <= columns:
        raise DipInputError(f"manifest {path} needs the columns 'path' and 'sha256' (tab-separated)")
    out: dict[str, str] = {}
    for i, row in rows:
        rel, digest = row["path"].strip(), row["sha256"].strip().lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise DipInputError(f"{path}:{i}: {digest!r} is not a sha256 hex digest")
        if rel.startswith("/") or ".." in Path(rel).parts:
            raise DipInputError(f"{path}:{i}: manifest paths must be relative and stay inside, got {rel!r}")
        out[rel] = digest
    return out


def read_manifest_sizes(path: str | os.PathLike) -> dict[str, tuple[int, int, int]]:
    """The optional ``size`` (``WxH``) and ``channels`` (1 or 3) columns of a manifest: ``{path: (w, h, channels)}``.

    Used to plan jobs before anything is downloaded (fits of one shape can share a job); files without a size are
    left out. These are facts about checksummed files: they cannot go stale without the hashes changing too.
    """
    path = Path(path)
    columns, rows = _manifest_table(path)
    out: dict[str, tuple[int, int, int]] = {}
    if "size" not in columns:
        return out
    for i, row in rows:
        size = (row.get("size") or "").strip()
        if not size:
            continue
        try:
            w, h = (int(v) for v in size.lower().split("x"))
            channels = int((row.get("channels") or "3").strip() or 3)
        except ValueError:
            raise DipInputError(f"{path}:{i}: size {size!r} is not WIDTHxHEIGHT or channels is not 1 or 3") from None
        out[row["path"].strip()] = (w, h, channels)
    return out


def manifest_from_sha256sums(sums: str | os.PathLike, prefixes: tuple[str, ...] = (PROJECT_PAGE, REPO_DATA)) -> dict:
    """``{path: sha256}`` from a ``sha256sum`` listing (``<hash>  ./<path>``), keeping paths under ``prefixes``."""
    out = {}
    for line in Path(sums).read_text().splitlines():
        if not line.strip():
            continue
        digest, rel = line.split(maxsplit=1)
        rel = rel.strip().lstrip("*").removeprefix("./")
        if rel.startswith(prefixes):
            out[rel] = digest.lower()
    return dict(sorted(out.items()))


def write_manifest(manifest: dict[str, str], path: str | os.PathLike) -> None:
    lines = ["path\tsha256"] + [f"{rel}\t{digest}" for rel, digest in sorted(manifest.items())]
    with atomic_write(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


def sha256sum(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _url(base_url: str, rel: str) -> str:
    return base_url.rstrip("/") + "/" + rel.lstrip("/")


_MIRROR_HINT = (
    "If this machine is offline, point the workflow at a mirror laid out like raw.githubusercontent.com, e.g. serve "
    "a copy of the benchmark files with `python -m http.server --bind 127.0.0.1 --directory MIRROR_FOLDER 8000` "
    "and run `snakemake --config download_base_url=http://127.0.0.1:8000/ ...` (or set download_base_url in the "
    "config file)."
)


def fetch(
    rel: str,
    sha256: str,
    dest_root: str | os.PathLike,
    *,
    base_url: str = DEFAULT_BASE_URL,
    retries: int = 3,
    timeout: float = 30.0,
    backoff: float = 1.0,
) -> Path:
    """Download ``<base_url>/<rel>`` to ``<dest_root>/<rel>`` and check its sha256; return the local path.

    An existing file with the right hash is not downloaded again. Connection errors, timeouts and 5xx/429 answers are
    retried ``retries`` times with exponential back-off; other HTTP errors are not. A checksum mismatch raises
    :class:`DownloadError` and leaves no file behind (pooch downloads to a temporary file and only moves it into
    place once the hash matches). Every error message names the URL and how to use a mirror.
    """
    import pooch
    import requests

    dest = Path(dest_root) / rel
    url = _url(base_url, rel)
    if dest.is_file() and sha256sum(dest) == sha256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    downloader = pooch.HTTPDownloader(progressbar=False, timeout=timeout)
    attempts = max(1, int(retries) + 1)
    last: Exception | None = None
    for attempt in range(attempts):
        try:
            pooch.retrieve(
                url, known_hash=f"sha256:{sha256}", fname=dest.name, path=dest.parent, downloader=downloader,
                progressbar=False,
            )
            return dest
        except ValueError as exc:  # pooch: "SHA256 hash of downloaded file (...) does not match the known hash"
            dest.unlink(missing_ok=True)
            raise DownloadError(
                f"checksum mismatch for {url}: expected sha256 {sha256}. {exc}. The file was not kept. Either the "
                "server (download_base_url) serves a different file than the manifest lists, or the download was "
                "corrupted; check the mirror."
            ) from None
        except requests.exceptions.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            last = exc
            if status is not None and status < 500 and status != 429:
                break  # 404 and friends will not get better by retrying
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout, OSError) as exc:
            last = exc
        if attempt + 1 < attempts:
            time.sleep(backoff * 2**attempt)
    dest.unlink(missing_ok=True)
    reason = f"{type(last).__name__}: {last}" if last is not None else "unknown error"
    raise DownloadError(f"cannot download {url} ({reason}). {_MIRROR_HINT}")


def fetch_many(
    rels, manifest: dict[str, str], dest_root: str | os.PathLike, *, base_url: str = DEFAULT_BASE_URL, **kwargs
) -> list[Path]:
    """:func:`fetch` every path in ``rels`` (each must be in ``manifest``)."""
    missing = [r for r in rels if r not in manifest]
    if missing:
        raise DipInputError(f"not in the manifest (no checksum known): {', '.join(missing[:5])}")
    return [fetch(r, manifest[r], dest_root, base_url=base_url, **kwargs) for r in rels]


class CorruptedDownload(DownloadError):
    """A downloaded file that no longer matches its manifest checksum (truncated or altered since the download)."""


def verify_downloads(
    paths, *, resources_dir: str | os.PathLike, manifest: str | os.PathLike = DEFAULT_MANIFEST
) -> list[Path]:
    """Check every file of ``paths`` that was downloaded -- it lies under ``resources_dir`` at a path the manifest
    lists -- against the manifest's sha256; return the files checked.

    :func:`fetch` checks a file once, when it downloads it; a file truncated or altered later (a full disk, an
    interrupted copy, an edit) would be used as it is. The workflow's jobs call this on their inputs before they read
    them (a few ms per file). Raises :class:`CorruptedDownload` naming every file that does not match and how to get
    it again. The manifest is read only when some path is a downloaded file.
    """
    root = Path(os.path.abspath(resources_dir))  # not resolve(): a file linked in from elsewhere is still checked
    downloaded = {}
    for path in paths:
        try:
            downloaded[Path(path)] = Path(os.path.abspath(path)).relative_to(root).as_posix()
        except ValueError:
            continue  # not under resources_dir: made by the workflow, not downloaded
    if not downloaded:
        return []
    checksums = read_manifest(manifest)
    checked, bad = [], []
    for path, rel in downloaded.items():
        expected = checksums.get(rel)
        if expected is None or not path.is_file():
            continue  # not a manifest file, or missing (Snakemake reports missing inputs itself)
        found = sha256sum(path)
        checked.append(path)
        if found != expected:
            size = path.stat().st_size
            bad.append(f"{path} ({size} bytes, sha256 {found[:12]}..., the manifest's {expected[:12]}...)")
    if len(bad) == 1:
        raise CorruptedDownload(
            f"the downloaded file {bad[0]} does not match the manifest {manifest}: it was truncated or altered after "
            "it was downloaded. To fetch it again, delete it and re-run the same snakemake command: Snakemake "
            "downloads it again before this job runs again."
        )
    if bad:
        raise CorruptedDownload(
            f"{len(bad)} downloaded files do not match the manifest {manifest}: {'; '.join(bad)}. They were "
            "truncated or altered after they were downloaded. To fetch them again, delete them and re-run the same "
            "snakemake command: Snakemake downloads them again before this job runs again."
        )
    return checked


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
