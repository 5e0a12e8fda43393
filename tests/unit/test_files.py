"""dip.files: a full disk (or any failure while writing) leaves the previous file, or none, and no temporary file."""

from __future__ import annotations

import errno
import json
import os

import pytest

from dip.errors import DipInputError
from dip.files import atomic_write, write_json


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_a_full_disk_keeps_the_previous_record(tmp_path, monkeypatch, where):
    record = write_json(tmp_path / "fit.json", {"psnr": 20.0})
    before = record.read_bytes()
    if where == "fsync":
        monkeypatch.setattr(os, "fsync", _full_disk)
    else:  # the disk fills up in the middle of the content

        def half_then_full(obj, fh, **kwargs):
            fh.write(json.dumps(obj)[:5])
            _full_disk()

        monkeypatch.setattr(json, "dump", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        write_json(record, {"psnr": 21.0, "history": [{"loss": 0.1}] * 10})
    assert record.read_bytes() == before and json.loads(before) == {"psnr": 20.0}
    assert [p.name for p in tmp_path.iterdir()] == ["fit.json"]


def test_a_failed_first_write_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "fsync", _full_disk)
    with pytest.raises(OSError, match="No space left"):
        with atomic_write(tmp_path / "scores.csv", "w") as fh:
            fh.write("image,psnr\n")
    assert list(tmp_path.iterdir()) == []


# --- a write that fails: one line naming the file and the cause (issue #28 item 2) ---------------------------------


def test_a_write_to_a_full_disk_is_one_line_naming_the_file(full_disk):
    from dip.errors import CannotWrite

    target = full_disk / "records" / "fit.json"
    with pytest.raises(CannotWrite) as info:
        write_json(target, {"x": "y" * 100_000})
    message = str(info.value)
    assert "\n" not in message and str(target) in message and "No space left on device" in message
    assert "free space" in message and isinstance(info.value, DipInputError)
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("code, cause, remedy", [(errno.ENOSPC, "No space left on device", "free space"),
                                                 (errno.EACCES, "Permission denied", "writable")])  # fmt: skip
def test_a_failed_write_names_the_file_and_its_cause_stand_in(tmp_path, monkeypatch, code, cause, remedy):
    # what the tmpfs test shows, where no tmpfs can be mounted: the disk fills as the file is flushed
    import dip.files
    from dip.errors import CannotWrite

    def fail(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(dip.files.os, "fsync", fail)
    with pytest.raises(CannotWrite, match=f"cannot write {tmp_path / 'a.json'}: {cause}.*{remedy}"):
        write_json(tmp_path / "a.json", {})
    assert not list(tmp_path.iterdir())
