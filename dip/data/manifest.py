"""The download manifest and the downloads it checks (torch-free): where the benchmark files are, their sha256 and
sizes, fetched from a mirror and checked again before a job reads them.

The manifest (``config/manifest/benchmarks.tsv``) is a TSV of ``path`` (relative to the download base URL and to the
local resources folder), ``sha256`` and, for images, ``size`` (``WxH``) and ``channels``: :meth:`Manifest.read` is its
one reader (the workflow's plan reads it once; :func:`read_manifest` gives its checksums). :func:`fetch` downloads a
file under a base URL laid out like ``raw.githubusercontent.com`` (pooch, a hash check, retries);
:func:`verify_downloads` checks downloaded files again before a job reads them.
"""

from __future__ import annotations

import csv
import hashlib
import os
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from dip.errors import DipInputError
from dip.files import atomic_write

__all__ = [
    "PROJECT_PAGE",
    "REPO_DATA",
    "DEFAULT_BASE_URL",
    "DEFAULT_MANIFEST",
    "Manifest",
    "read_manifest",
    "manifest_from_sha256sums",
    "write_manifest",
    "sha256sum",
    "DownloadError",
    "CorruptedDownload",
    "fetch",
    "fetch_many",
    "verify_downloads",
]

# Folders of the mirror, as laid out under https://raw.githubusercontent.com/.
PROJECT_PAGE = "DmitryUlyanov/dmitryulyanov.github.io/master/assets/deep-image-prior"
REPO_DATA = "DmitryUlyanov/deep-image-prior/master/data"

DEFAULT_BASE_URL = "https://raw.githubusercontent.com/"
DEFAULT_MANIFEST = "config/manifest/benchmarks.tsv"  # relative to the workflow's working directory


# --- the manifest --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    """The download manifest, read once: its rows (``path``, ``sha256`` and, for images, ``size`` and ``channels``),
    their checksums and sizes."""

    path: str
    rows: tuple[dict[str, str], ...]

    @classmethod
    def read(cls, path: str | os.PathLike) -> Manifest:
        """Read a manifest TSV (``#`` lines are comments); every row needs a sha256 hex digest and a relative path
        that stays inside."""
        path = Path(path)
        if not path.is_file():
            raise DipInputError(f"manifest {path} not found")
        with path.open(newline="") as fh:
            reader = csv.DictReader((line for line in fh if not line.startswith("#")), delimiter="\t")
            if not {"path", "sha256"} <= set(reader.fieldnames or ()):
                raise DipInputError(f"manifest {path} needs the columns 'path' and 'sha256' (tab-separated)")
            rows = tuple({k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader)
        for i, row in enumerate(rows, start=2):
            rel, digest = row["path"], row["sha256"].lower()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise DipInputError(f"{path}:{i}: {digest!r} is not a sha256 hex digest")
            if rel.startswith("/") or ".." in Path(rel).parts:
                raise DipInputError(f"{path}:{i}: manifest paths must be relative and stay inside, got {rel!r}")
        return cls(str(path), rows)

    @cached_property
    def checksums(self) -> dict[str, str]:
        """``{relative path: sha256}``."""
        return {row["path"]: row["sha256"].lower() for row in self.rows}

    @cached_property
    def sizes(self) -> dict[str, tuple[int, int, int]]:
        """``{relative path: (width, height, channels)}`` of the rows with a size (the optional ``size`` and
        ``channels`` columns).

        Used to plan jobs before anything is downloaded (fits of one shape can share a job); files without a size are
        left out. These are facts about checksummed files: they cannot go stale without the hashes changing too.
        """
        out = {}
        for i, row in enumerate(self.rows, start=2):
            size = row.get("size") or ""
            if size:
                try:
                    w, h = (int(v) for v in size.lower().split("x"))
                    out[row["path"]] = (w, h, int(row.get("channels") or 3))
                except ValueError:
                    raise DipInputError(
                        f"{self.path}:{i}: size {size!r} is not WIDTHxHEIGHT or channels is not 1 or 3"
                    ) from None
        return out


def read_manifest(path: str | os.PathLike) -> dict[str, str]:
    """The checksums of a manifest TSV (header ``path<TAB>sha256``): ``{relative path: sha256}``."""
    return Manifest.read(path).checksums


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



# --- downloads -----------------------------------------------------------------------------------------------------


class DownloadError(DipInputError):
    """A benchmark file could not be downloaded or did not match its checksum."""


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
