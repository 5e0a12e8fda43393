"""dip.data.benchmarks: the benchmark registry and manifest, downloads (against a loopback mirror), task inputs."""

from __future__ import annotations

import time

import numpy as np
import pytest

from dip.data import benchmarks as datasets
from dip.errors import DipInputError
from tests.helpers import MIRROR, REPO, closed_port_url

MANIFEST = REPO / "config" / "manifest" / "benchmarks.tsv"
SET5_GT = f"{datasets.PROJECT_PAGE}/SR/Set5/x4/baby_GT.png"


# --- registry and manifest ----------------------------------------------------------------------------------------


def test_benchmarks_have_the_paper_sizes():
    b = datasets.BENCHMARKS
    assert len(b["set5"].images) == 5 and len(b["set14"].images) == 14
    assert len(b["color9"].images) == 9 and len(b["gray11"].images) == 11
    assert b["set5"].released_files(8, "baby")["dip"].endswith("baby_deep_prior_005.png")
    assert b["gray11"].input_file(0.5, "boat").endswith("Reconstruction/Gray/50p/boat_masked.png")
    with pytest.raises(DipInputError, match="no level"):
        b["set5"].folder(3)
    with pytest.raises(DipInputError, match="no image"):
        b["set5"].file(4, "lena", "GT")


def test_committed_manifest_lists_every_benchmark_file():
    manifest = datasets.read_manifest(MANIFEST)
    for bench in datasets.BENCHMARKS.values():
        for level in bench.levels:
            missing = [f for f in bench.all_files(level) if f not in manifest]
            assert not missing, (bench.name, level, missing[:3])


def test_committed_manifest_matches_the_mirror_checksums():
    sums = MIRROR / "SHA256SUMS"
    if not sums.is_file():
        pytest.skip("benchmark mirror not present")
    assert datasets.read_manifest(MANIFEST) == datasets.manifest_from_sha256sums(sums)


def test_manifest_sizes_are_the_mirror_images_as_read(tmp_path):
    # The size/channels columns plan packed fits before anything is downloaded: they must be what read_image gives.
    from PIL import Image

    from dip.data.imageio import read_image

    if not MIRROR.is_dir():
        pytest.skip("benchmark mirror not present")
    sizes = datasets.read_manifest_sizes(MANIFEST)
    assert set(sizes) == set(datasets.read_manifest(MANIFEST))
    for rel, (w, h, c) in sizes.items():
        with Image.open(MIRROR / rel) as im:
            assert im.size == (w, h), rel
    for rel in (SET5_GT, f"{datasets.PROJECT_PAGE}/SR/Set14/x4/bridge_glasner.png"):
        img = read_image(MIRROR / rel, alpha="ignore")
        assert sizes[rel] == (img.shape[1], img.shape[0], img.shape[2]), rel
    assert sizes[f"{datasets.PROJECT_PAGE}/SR/Set14/x4/bridge_glasner.png"][2] == 1

    plain = tmp_path / "plain.tsv"
    plain.write_text("path\tsha256\na/b.png\t" + "0" * 64 + "\n")
    assert datasets.read_manifest_sizes(plain) == {}
    bad = tmp_path / "bad.tsv"
    bad.write_text("path\tsha256\tsize\tchannels\na/b.png\t" + "0" * 64 + "\t512by512\t3\n")
    with pytest.raises(DipInputError, match="WIDTHxHEIGHT"):
        datasets.read_manifest_sizes(bad)


def test_read_manifest_refuses_bad_rows(tmp_path):
    bad = tmp_path / "m.tsv"
    bad.write_text("path\tsha256\na/b.png\tnothex\n")
    with pytest.raises(DipInputError, match="sha256"):
        datasets.read_manifest(bad)
    bad.write_text("path\tsha256\n../escape.png\t" + "0" * 64 + "\n")
    with pytest.raises(DipInputError, match="relative"):
        datasets.read_manifest(bad)
    bad.write_text("file\thash\n")
    with pytest.raises(DipInputError, match="columns"):
        datasets.read_manifest(bad)


def test_manifest_round_trip(tmp_path):
    m = {"x/a.png": "a" * 64, "x/b.png": "b" * 64}
    datasets.write_manifest(m, tmp_path / "m.tsv")
    assert datasets.read_manifest(tmp_path / "m.tsv") == m


# --- downloads (the real pooch code against a loopback HTTP mirror) -----------------------------------------------


def _digest(rel):
    return datasets.read_manifest(MANIFEST)[rel]


def test_fetch_downloads_and_checks(mirror_url, tmp_path):
    path = datasets.fetch(SET5_GT, _digest(SET5_GT), tmp_path, base_url=mirror_url)
    assert path == tmp_path / SET5_GT
    assert datasets.sha256sum(path) == _digest(SET5_GT)
    mtime = path.stat().st_mtime_ns
    # a second call finds the file with the right hash and does not download again (even from a dead server)
    again = datasets.fetch(SET5_GT, _digest(SET5_GT), tmp_path, base_url=closed_port_url(), retries=0)
    assert again == path and path.stat().st_mtime_ns == mtime


def test_fetch_replaces_a_corrupted_local_file(mirror_url, tmp_path):
    dest = tmp_path / SET5_GT
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"not a png")
    datasets.fetch(SET5_GT, _digest(SET5_GT), tmp_path, base_url=mirror_url)
    assert datasets.sha256sum(dest) == _digest(SET5_GT)


def test_checksum_mismatch_fails_and_leaves_no_file(mirror_url, tmp_path):
    with pytest.raises(datasets.DownloadError, match="checksum mismatch") as err:
        datasets.fetch(SET5_GT, "0" * 64, tmp_path, base_url=mirror_url)
    assert mirror_url in str(err.value)
    folder = (tmp_path / SET5_GT).parent
    assert not (tmp_path / SET5_GT).exists()
    assert not folder.exists() or not any(folder.iterdir()), list(folder.iterdir())


def test_unreachable_url_fails_clearly_after_retries(tmp_path):
    url = closed_port_url()
    started = time.perf_counter()
    with pytest.raises(datasets.DownloadError) as err:
        datasets.fetch(SET5_GT, _digest(SET5_GT), tmp_path, base_url=url, retries=2, backoff=0.05)
    message = str(err.value)
    assert url + SET5_GT in message
    assert "download_base_url" in message and "http.server" in message
    assert time.perf_counter() - started < 20
    assert not (tmp_path / SET5_GT).exists()


def test_missing_file_is_not_retried(mirror_url, tmp_path):
    started = time.perf_counter()
    with pytest.raises(datasets.DownloadError, match="404"):
        datasets.fetch("no/such/file.png", "0" * 64, tmp_path, base_url=mirror_url, retries=5, backoff=2.0)
    assert time.perf_counter() - started < 2.0  # no back-off sleeps for a 404


def test_fetch_many_refuses_paths_without_checksum(tmp_path):
    with pytest.raises(DipInputError, match="manifest"):
        datasets.fetch_many(["x.png"], {}, tmp_path)


# --- images and task inputs -----------------------------------------------------------------------------------------


def test_load_embedded_resizes_to_a_square():
    img = datasets.load_embedded("chelsea", 64)
    assert img.shape == (64, 64, 3) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0
    full = datasets.load_embedded("coffee")  # 400 x 600 -> multiples of 32
    assert full.shape == (384, 576, 3)
    assert datasets.load_embedded("camera", 32).shape == (32, 32, 1)
    with pytest.raises(DipInputError, match="embedded"):
        datasets.load_embedded("lena", 64)


def test_sr_inputs_crop_to_32_and_downscale():
    gt = np.random.default_rng(0).random((100, 70, 3)).astype(np.float32)
    made = datasets.make_task_inputs("sr", 4, gt)
    assert made.ground_truth.shape == gt.shape  # scored in the full GT frame
    assert made.fit_target.shape == (96, 64, 3)
    assert made.observation.shape == (24, 16, 3)


def test_denoise_inputs_are_seeded_and_quantised(photo64):
    a = datasets.make_task_inputs("denoise", 25, photo64, seed=3)
    b = datasets.make_task_inputs("denoise", 25, photo64, seed=3)
    c = datasets.make_task_inputs("denoise", 25, photo64, seed=4)
    np.testing.assert_array_equal(a.observation, b.observation)
    assert not np.array_equal(a.observation, c.observation)
    np.testing.assert_allclose(a.observation * 255, np.round(a.observation * 255), atol=1e-3)
    noise_std = float(np.std(a.observation - photo64)) * 255
    assert 18 < noise_std < 27  # sigma 25, a little less where clipping bites


def test_denoise_uses_the_released_noisy_image(photo64):
    released = np.clip(photo64 + 0.1, 0, 1)
    made = datasets.make_task_inputs("denoise", 25, photo64, released_input=released)
    np.testing.assert_array_equal(made.observation, released)
    with pytest.raises(DipInputError, match="released noisy"):
        datasets.make_task_inputs("denoise", 25, photo64, released_input=released[:32])


def test_inpaint_inputs(grey64):
    made = datasets.make_task_inputs("inpaint", 0.5, grey64, seed=1)
    assert made.mask.shape == (64, 64, 1)
    assert made.info["missing_fraction"] == pytest.approx(0.5, abs=0.05)
    np.testing.assert_array_equal(made.observation, grey64 * made.mask)
    # from a released masked image: missing pixels are exactly 0
    masked = np.clip(grey64, 1 / 255, 1) * made.mask
    again = datasets.make_task_inputs("inpaint", 0.5, np.clip(grey64, 1 / 255, 1), released_input=masked)
    np.testing.assert_array_equal(again.mask, made.mask)


def test_derive_seed_is_stable_and_distinct():
    a = datasets.derive_seed(0, "photos", "astronaut", "denoise", 25)
    assert a == datasets.derive_seed(0, "photos", "astronaut", "denoise", 25)
    assert a != datasets.derive_seed(0, "photos", "coffee", "denoise", 25)
    assert a != datasets.derive_seed(1, "photos", "astronaut", "denoise", 25)
    assert 0 <= a < 2**31


def test_released_inputs_from_the_mirror():
    if not MIRROR.is_dir():
        pytest.skip("benchmark mirror not present")
    bench = datasets.BENCHMARKS["gray11"]
    gt = datasets.load_benchmark_image(MIRROR / bench.gt_file(0.5, "house"), "gray11")
    masked = datasets.load_benchmark_image(MIRROR / bench.input_file(0.5, "house"), "gray11")
    made = datasets.make_task_inputs("inpaint", 0.5, gt, released_input=masked)
    assert made.ground_truth.shape == (256, 256, 1)
    assert made.info["missing_fraction"] == pytest.approx(0.5, abs=0.01)
    set5 = datasets.BENCHMARKS["set5"]
    gt = datasets.load_benchmark_image(MIRROR / set5.gt_file(4, "head"), "set5")
    made = datasets.make_task_inputs("sr", 4, gt)
    assert made.fit_target.shape[0] % 32 == 0 and made.observation.shape[0] * 4 == made.fit_target.shape[0]
