"""dip.fit.checkpoint: checkpoints hold tensors and plain data only and are read weights-only (a planted pickle is
refused without running anything), a checkpoint that cannot be resumed says so by name, a full disk keeps the previous
checkpoint, and one process at a time fits to a checkpoint path (a second one waits, then refuses in one line)."""

from __future__ import annotations

import errno
import fcntl
import os
import pickle
import threading
import time

import numpy as np
import pytest
import torch

from dip import physics
from dip.errors import DipInputError
from dip.fit import fit
from dip.fit.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointBusy,
    CheckpointError,
    checkpoint_lock,
    load_checkpoint,
    lock_path,
    save_checkpoint,
)
from dip.fit.stopping import EarlyStopping
from tests.helpers import CrashAt, tiny_fit_config


class _Planted:
    """What a malicious checkpoint holds: unpickling it would create ``marker`` (any code could run instead)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_a_planted_pickle_is_refused_without_running_it(tmp_path, how):
    marker, ckpt = tmp_path / "ran", tmp_path / "fit.ckpt"
    state = {"format": CHECKPOINT_FORMAT, "config": tiny_fit_config().to_dict(), "payload": _Planted(marker)}
    if how == "torch.save":
        torch.save(state, ckpt)
    else:
        ckpt.write_bytes(pickle.dumps(state))
    pickle.loads(pickle.dumps(_Planted(marker))).close()
    assert marker.exists()  # the payload works when unpickled
    marker.unlink()
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(ckpt, tiny_fit_config(), torch.device("cpu"))
    assert not marker.exists()
    message = str(err.value)
    assert str(ckpt) in message and "\n" not in message and err.value.path == ckpt
    if how == "torch.save":
        assert "holds more than tensors and plain data" in message and "GLOBAL" in message
    assert isinstance(err.value, DipInputError)


def test_a_checkpoint_holds_only_what_a_weights_only_load_takes(photo64, tmp_path):
    # Every part of a real checkpoint, a hook's state included (early stopping: tensors, ints), numpy numbers in the
    # hooks' records turned into Python ones: it loads weights-only, and the fit resumes bit-identical from it.
    class NumpyNote(CrashAt):
        def on_step(self, state):
            state.extra["numpy"] = np.float64(state.step)
            super().on_step(state)

    config = tiny_fit_config(iterations=12, checkpoint_every=4, exp_weight=0.9)
    ckpt = tmp_path / "fit.ckpt"
    whole = fit(photo64, physics.Identity(), config, hooks=[EarlyStopping(window=3, patience=100, stop=False)])
    with pytest.raises(KeyboardInterrupt):
        fit(photo64, physics.Identity(), config, checkpoint_path=ckpt,
            hooks=[EarlyStopping(window=3, patience=100, stop=False), NumpyNote(9)])  # fmt: skip
    state = torch.load(ckpt, weights_only=True)
    assert state["format"] == CHECKPOINT_FORMAT and state["extra"]["numpy"] == 7.0
    assert type(state["extra"]["numpy"]) is float and isinstance(state["hooks"][0]["_buffer"], torch.Tensor)
    resumed = fit(photo64, physics.Identity(), config, checkpoint_path=ckpt,
                  hooks=[EarlyStopping(window=3, patience=100, stop=False), CrashAt(10**6)])  # fmt: skip
    assert resumed.resumed_from == 8
    np.testing.assert_array_equal(resumed.output, whole.output)


def test_checkpoints_that_cannot_be_resumed_say_why(photo64, tmp_path):
    config, cpu = tiny_fit_config(iterations=6), torch.device("cpu")
    ckpt = tmp_path / "fit.ckpt"
    torch.save({"format": 1, "config": config.to_dict()}, ckpt)  # the layout of an earlier version
    with pytest.raises(CheckpointError, match="format 1; this version reads format 2"):
        load_checkpoint(ckpt, config, cpu)
    torch.save({"format": CHECKPOINT_FORMAT, "config": config.to_dict(), "step": 3}, ckpt)  # the state is missing
    with pytest.raises(CheckpointError, match="does not hold the state of this fit"):
        fit(photo64, physics.Identity(), config, checkpoint_path=ckpt)
    ckpt.write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(ckpt, config, cpu)


def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    ckpt = tmp_path / "fit.ckpt"
    save_checkpoint(ckpt, {"step": 1})
    before = ckpt.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(ckpt, {"step": 2})
    assert ckpt.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["fit.ckpt"]


# --- one writer per checkpoint ---------------------------------------------------------------------------------------


def _hold(lock):
    """Lock ``lock`` as another process would (an open file description of its own)."""
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, b"4242 other-node\n")
    return fd


def test_a_second_writer_waits_then_refuses_in_one_line(tmp_path, capsys):
    ckpt = tmp_path / "fit.ckpt"
    fd = _hold(lock_path(ckpt))
    try:
        started = time.monotonic()
        with pytest.raises(CheckpointBusy) as err:
            with checkpoint_lock(ckpt, wait=0.3):
                pass
        assert 0.3 <= time.monotonic() - started < 5
    finally:
        os.close(fd)
    message = str(err.value)
    assert "process 4242 on other-node" in message and str(ckpt) in message and "\n" not in message
    assert "waiting for it" in capsys.readouterr().err


def test_a_second_writer_goes_on_once_the_first_lets_go(tmp_path, capsys):
    ckpt = tmp_path / "fit.ckpt"
    fd = _hold(lock_path(ckpt))
    threading.Timer(0.3, os.close, (fd,)).start()
    with checkpoint_lock(ckpt, wait=30):
        assert lock_path(ckpt).read_text().split()[0] == str(os.getpid())
        with checkpoint_lock(ckpt, wait=0):  # re-entrant in one process
            pass
        with pytest.raises(BlockingIOError):  # still held
            _hold(lock_path(ckpt))
    assert not lock_path(ckpt).exists()  # removed as it was let go
    assert "waiting for it" in capsys.readouterr().err


def test_a_lock_file_removed_by_its_holder_is_not_trusted(tmp_path):
    # A waiter that got the lock of the file its holder removed while letting go must lock the new file instead.
    ckpt = tmp_path / "fit.ckpt"
    fd = _hold(lock_path(ckpt))

    def let_go():
        lock_path(ckpt).unlink()
        os.close(fd)

    threading.Timer(0.2, let_go).start()
    with checkpoint_lock(ckpt, wait=30):
        with pytest.raises(BlockingIOError):
            _hold(lock_path(ckpt))


def test_a_fit_holds_its_checkpoint_lock(photo64, tmp_path, monkeypatch):
    ckpt = tmp_path / "fit.ckpt"
    seen = []

    class Probe(CrashAt):
        def on_step(self, state):
            if state.step == 1:
                with pytest.raises(BlockingIOError):
                    _hold(lock_path(ckpt))
                seen.append(state.step)

    fit(photo64, physics.Identity(), tiny_fit_config(iterations=3), checkpoint_path=ckpt, hooks=[Probe(-1)])
    assert seen == [1] and not lock_path(ckpt).exists()
    monkeypatch.setattr("dip.fit.checkpoint.LOCK_WAIT_SECONDS", 0.2)
    fd = _hold(lock_path(ckpt))
    try:
        with pytest.raises(CheckpointBusy):
            fit(photo64, physics.Identity(), tiny_fit_config(iterations=3), checkpoint_path=ckpt)
    finally:
        os.close(fd)
    assert not ckpt.exists()


def test_a_lock_on_a_full_disk_is_one_line_and_leaves_no_empty_lock(full_disk):
    # issue #28 item 2: the lock file is made (an inode is free) but its holder's line cannot be written
    from dip.errors import CannotWrite

    ckpt = full_disk / "fit.ckpt"
    with pytest.raises(CannotWrite, match=f"cannot write {lock_path(ckpt)}: No space left on device"):
        with checkpoint_lock(ckpt):
            pass
    assert not lock_path(ckpt).exists()


def test_a_checkpoint_of_other_input_images_is_refused(photo64, tmp_path):
    # issue #28 item 3: the checkpoint records the digest of the images it was made for (observation, mask, guide)
    config = tiny_fit_config(iterations=6, checkpoint_every=2)
    ckpt = tmp_path / "fit.ckpt"
    with pytest.raises(KeyboardInterrupt):
        fit(photo64, physics.Identity(), config, checkpoint_path=ckpt, hooks=[CrashAt(3)])
    other = np.ascontiguousarray(photo64[::-1])
    with pytest.raises(CheckpointError, match="was made for other input images") as info:
        fit(other, physics.Identity(), config, checkpoint_path=ckpt)
    assert "\n" not in str(info.value) and info.value.path == ckpt
    assert fit(photo64, physics.Identity(), config, checkpoint_path=ckpt).resumed_from == 2  # its own: resumed
