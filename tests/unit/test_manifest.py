"""dip.data.manifest: the download manifest (checksums, sizes) and the downloads (against a loopback mirror)."""

from __future__ import annotations

import time

import pytest

from dip.data import manifest
from dip.errors import DipInputError
from tests.helpers import MANIFEST, MIRROR, closed_port_url

SET5_GT = f"{manifest.PROJECT_PAGE}/SR/Set5/x4/baby_GT.png"


# --- the manifest --------------------------------------------------------------------------------------------------


def test_committed_manifest_matches_the_mirror_checksums():
    sums = MIRROR / "SHA256SUMS"
    if not sums.is_file():
        pytest.skip("benchmark mirror not present")
    assert manifest.read_manifest(MANIFEST) == manifest.manifest_from_sha256sums(sums)


def test_manifest_sizes_are_the_mirror_images_as_read(tmp_path):
    # The size/channels columns plan packed fits before anything is downloaded: they must be what read_image gives.
    from PIL import Image

    from dip.data.imageio import read_image

    if not MIRROR.is_dir():
        pytest.skip("benchmark mirror not present")
    sizes = manifest.Manifest.read(MANIFEST).sizes
    assert set(sizes) == set(manifest.read_manifest(MANIFEST))
    for rel, (w, h, c) in sizes.items():
        with Image.open(MIRROR / rel) as im:
            assert im.size == (w, h), rel
    for rel in (SET5_GT, f"{manifest.PROJECT_PAGE}/SR/Set14/x4/bridge_glasner.png"):
        img = read_image(MIRROR / rel, alpha="ignore")
        assert sizes[rel] == (img.shape[1], img.shape[0], img.shape[2]), rel
    assert sizes[f"{manifest.PROJECT_PAGE}/SR/Set14/x4/bridge_glasner.png"][2] == 1

    plain = tmp_path / "plain.tsv"
    plain.write_text("path\tsha256\na/b.png\t" + "0" * 64 + "\n")
    assert manifest.Manifest.read(plain).sizes == {}
    bad = tmp_path / "bad.tsv"
    bad.write_text("path\tsha256\tsize\tchannels\na/b.png\t" + "0" * 64 + "\t512by512\t3\n")
    with pytest.raises(DipInputError, match="WIDTHxHEIGHT"):
        manifest.Manifest.read(bad).sizes


def test_read_manifest_refuses_bad_rows(tmp_path):
    bad = tmp_path / "m.tsv"
    bad.write_text("path\tsha256\na/b.png\tnothex\n")
    with pytest.raises(DipInputError, match="sha256"):
        manifest.read_manifest(bad)
    bad.write_text("path\tsha256\n../escape.png\t" + "0" * 64 + "\n")
    with pytest.raises(DipInputError, match="relative"):
        manifest.read_manifest(bad)
    bad.write_text("file\thash\n")
    with pytest.raises(DipInputError, match="columns"):
        manifest.read_manifest(bad)


def test_manifest_round_trip(tmp_path):
    m = {"x/a.png": "a" * 64, "x/b.png": "b" * 64}
    manifest.write_manifest(m, tmp_path / "m.tsv")
    assert manifest.read_manifest(tmp_path / "m.tsv") == m


# --- downloads (the real pooch code against a loopback HTTP mirror) ------------------------------------------------


def _digest(rel):
    return manifest.read_manifest(MANIFEST)[rel]


def test_fetch_downloads_and_checks(mirror_url, tmp_path):
    path = manifest.fetch(SET5_GT, _digest(SET5_GT), tmp_path, base_url=mirror_url)
    assert path == tmp_path / SET5_GT
    assert manifest.sha256sum(path) == _digest(SET5_GT)
    mtime = path.stat().st_mtime_ns
    # a second call finds the file with the right hash and does not download again (even from a dead server)
    again = manifest.fetch(SET5_GT, _digest(SET5_GT), tmp_path, base_url=closed_port_url(), retries=0)
    assert again == path and path.stat().st_mtime_ns == mtime


def test_fetch_replaces_a_corrupted_local_file(mirror_url, tmp_path):
    dest = tmp_path / SET5_GT
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"not a png")
    manifest.fetch(SET5_GT, _digest(SET5_GT), tmp_path, base_url=mirror_url)
    assert manifest.sha256sum(dest) == _digest(SET5_GT)


def test_checksum_mismatch_fails_and_leaves_no_file(mirror_url, tmp_path):
    with pytest.raises(manifest.DownloadError, match="checksum mismatch") as err:
        manifest.fetch(SET5_GT, "0" * 64, tmp_path, base_url=mirror_url)
    assert mirror_url in str(err.value)
    folder = (tmp_path / SET5_GT).parent
    assert not (tmp_path / SET5_GT).exists()
    assert not folder.exists() or not any(folder.iterdir()), list(folder.iterdir())


def test_unreachable_url_fails_clearly_after_retries(tmp_path):
    url = closed_port_url()
    started = time.perf_counter()
    with pytest.raises(manifest.DownloadError) as err:
        manifest.fetch(SET5_GT, _digest(SET5_GT), tmp_path, base_url=url, retries=2, backoff=0.05)
    message = str(err.value)
    assert url + SET5_GT in message
    assert "download_base_url" in message and "http.server" in message
    assert time.perf_counter() - started < 20
    assert not (tmp_path / SET5_GT).exists()


def test_missing_file_is_not_retried(mirror_url, tmp_path):
    started = time.perf_counter()
    with pytest.raises(manifest.DownloadError, match="404"):
        manifest.fetch("no/such/file.png", "0" * 64, tmp_path, base_url=mirror_url, retries=5, backoff=2.0)
    assert time.perf_counter() - started < 2.0  # no back-off sleeps for a 404


def test_fetch_many_refuses_paths_without_checksum(tmp_path):
    with pytest.raises(DipInputError, match="manifest"):
        manifest.fetch_many(["x.png"], {}, tmp_path)
