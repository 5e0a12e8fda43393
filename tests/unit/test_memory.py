"""A fit's memory (dip.fit.memory): the dry-run estimates match what a step really keeps and allocates, the budget,
the choice of memory mode, and that choice as the fits, the CLI and the checkpoints apply it (which mode a fit
chooses, that it says so, that it changes no number, and the refusals)."""

from __future__ import annotations

import copy
import ctypes
import json

import numpy as np
import pytest
import torch

from dip import physics
from dip.cli import main
from dip.errors import DipInputError
from dip.fit import FitConfig, FitInterrupted, fit, memory
from dip.fit.memory_model import plain_memory_bound
from dip.fit.stacked import fit_many
from dip.nets import build_net
from dip.nets.recompute import enable_checkpointing, set_checkpointing
from tests.helpers import SigtermAt, build_family, save_png, tiny_fit_config


QUICK = ["--iters", "2", "--width", "8", "--device", "cpu", "--quiet", "--log-every", "1"]


@pytest.mark.parametrize("family", ["skip", "unet", "resnet"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_estimate_of_what_is_kept_for_backward_matches_the_measurement(family, precision):
    # The dry run (fake tensors, no data) against a real forward pass at 32-64 px: within 25% (in practice within a
    # few percent). The measurement also counts the network input z, which the dry run does not (the fit's own).
    net, z = build_family(family)
    net = net.to(memory_format=torch.channels_last)
    estimate = memory.fit_memory(net, z.shape[2], z.shape[3], precision=precision)
    measured_plain = memory.measure_kept_for_backward(net, z, precision) - z.nbytes
    measured_saved = memory.measure_kept_for_backward(enable_checkpointing(copy.deepcopy(net)), z, precision) - z.nbytes
    assert estimate.kept_plain == pytest.approx(measured_plain, rel=0.25)
    assert estimate.kept_checkpoint == pytest.approx(measured_saved, rel=0.25)
    assert estimate.kept_checkpoint < estimate.kept_plain


@pytest.mark.parametrize(
    "name, kwargs, depth",
    [("unet", dict(feature_scale=4), 32), ("resnet", {}, 32), ("encoder_decoder", {}, 32), ("skip_depth6", {}, 1)],
)
def test_every_family_needs_less_at_512_px(name, kwargs, depth):
    # (At 32-64 px a U-Net's weights outweigh its activations and checkpointing gains nothing.)
    with torch.device("meta"):
        net = build_net(name, depth, 3, **kwargs)
    estimate = memory.fit_memory(net, 512, 512)
    assert estimate.kept_checkpoint < 0.3 * estimate.kept_plain
    assert estimate.activations_checkpoint < 0.6 * estimate.activations_plain


def _glibc_in_use():
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]  # fmt: skip

    if not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = Mallinfo2
    return lambda: libc.mallinfo2().hblkhd + libc.mallinfo2().uordblks


@pytest.mark.parametrize("checkpointing", [False, True])
def test_the_estimated_peak_of_a_step_matches_the_allocated_peak(checkpointing):
    # The allocator's bytes in use (glibc), sampled after every operation of a forward + backward at 128 px of the
    # default 128-channel net, against the dry run's peak: within 25%.
    in_use = _glibc_in_use()
    if in_use is None:
        pytest.skip("needs glibc's mallinfo2")
    from torch.utils._python_dispatch import TorchDispatchMode

    class Peak(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            self.peak = max(getattr(self, "peak", 0), in_use())
            return out

    torch.manual_seed(0)
    net = build_net("skip", 32, 3).to(memory_format=torch.channels_last)
    set_checkpointing(net, checkpointing)
    z = torch.rand(1, 32, 128, 128)
    net(z).square().mean().backward()  # warm up (first-use buffers), then measure a step as the fit runs it
    net.zero_grad(set_to_none=True)
    base = in_use()
    with Peak() as peak:
        net(z).square().mean().backward()
    estimate = memory.fit_memory(net, 128, 128)
    predicted = estimate.activations_checkpoint if checkpointing else estimate.activations_plain
    assert peak.peak - base == pytest.approx(predicted, rel=0.25)


def test_a_checkpointed_fit_needs_much_less_at_1024_px():
    # The paper's default network (the case): the dry run costs no real memory.
    estimate = memory.fit_memory(tiny_fit_config().replace(net_kwargs={}, input_depth=32), 1024, 1024)
    assert estimate.kept_checkpoint < 0.25 * estimate.kept_plain
    assert estimate.activations_checkpoint < 0.5 * estimate.activations_plain
    assert 5 * 2**30 < estimate.plain < 9 * 2**30 and estimate.checkpoint < 4 * 2**30  # measured 6.4 / 3.5 GiB


def _estimate(plain_gb: float, checkpoint_gb: float) -> memory.FitMemory:
    return memory.FitMemory(
        height=2048, width=3072, precision="fp32", device="cpu", net="skip", plain=int(plain_gb * 2**30),
        checkpoint=int(checkpoint_gb * 2**30), kept_plain=0, kept_checkpoint=0, activations_plain=0,
        activations_checkpoint=0,
    )  # fmt: skip


def test_the_chooser_prefers_plain_then_checkpointing_then_says_what_to_do():
    gb = 2**30
    assert memory.choose_memory_mode(_estimate(3, 1), 4 * gb) == "plain"
    assert memory.choose_memory_mode(_estimate(3, 1), 4 * gb, memory_saving="on") == "checkpoint"
    assert memory.choose_memory_mode(_estimate(6, 2), 4 * gb) == "checkpoint"
    assert memory.choose_memory_mode(_estimate(6, 2), 4 * gb, "cpu", memory_saving="auto") == "checkpoint"
    # Off, and plain does not fit: the message names the size, the estimates and the flag that makes it fit.
    with pytest.raises(DipInputError) as err:
        memory.choose_memory_mode(_estimate(6, 2), 4 * gb, memory_saving="off")
    message = str(err.value)
    assert "3072x2048" in message and "6.0 GB" in message and "2.0 GB" in message and "4.0 GB" in message
    assert "--memory-saving on" in message
    # Nothing fits: what to do instead, never an out-of-memory crash mid-fit.
    for saving in ("auto", "on", "off"):
        with pytest.raises(DipInputError, match=r"3072x2048.*20\.0 GB.*8\.0 GB with --memory-saving on.*bf16"):
            memory.choose_memory_mode(_estimate(20, 8), 4 * gb, memory_saving=saving)
    with pytest.raises(DipInputError, match="memory saving"):
        memory.choose_memory_mode(_estimate(3, 1), 4 * gb, memory_saving="maybe")
    with pytest.raises(DipInputError, match="positive"):
        memory.choose_memory_mode(_estimate(3, 1), 0)


def test_the_cpu_budget_is_a_share_of_the_available_memory(monkeypatch):
    assert memory.memory_budget("cpu", 123) == 123
    budget = memory.memory_budget("cpu")
    assert 0 < budget <= memory._available_ram()
    monkeypatch.setattr(memory, "_available_ram", lambda: 10 * 2**30)
    assert memory.memory_budget("cpu") == int(10 * 2**30 * memory.CPU_BUDGET_FRACTION)
    assert memory.choose_memory_mode(_estimate(9, 2)) == "checkpoint"  # 8 GB budget


def test_estimates_refuse_unresolved_precision_and_empty_sizes():
    with pytest.raises(DipInputError, match="auto"):
        memory.fit_memory(tiny_fit_config(), 64, 64, precision="auto")
    with pytest.raises(DipInputError, match="positive"):
        memory.estimate_fit_memory(tiny_fit_config(), 0, 64)


def _no_dry_run(*args, **kwargs):
    raise AssertionError("the dry-run estimate ran")


def test_on_gives_the_same_fit_as_off_bit_for_bit(photo64):
    config = tiny_fit_config(iterations=4, log_every=2)
    off = fit(photo64, physics.Identity(), config.replace(memory_saving="off"), ground_truth=photo64)
    on = fit(photo64, physics.Identity(), config.replace(memory_saving="on"), ground_truth=photo64)
    np.testing.assert_array_equal(on.output, off.output)
    np.testing.assert_array_equal(on.output_raw, off.output_raw)
    assert [r["loss"] for r in on.history] == [r["loss"] for r in off.history]
    assert any(n.startswith("memory: checkpointing (asked for") for n in on.notes)
    assert not any(n.startswith("memory:") for n in off.notes)


def test_auto_on_a_small_image_chooses_plain_without_a_dry_run(photo64, monkeypatch):
    monkeypatch.setattr(memory, "fit_memory", _no_dry_run)
    config = tiny_fit_config(iterations=2)
    assert plain_memory_bound(config, 64, 64) is not None
    auto = fit(photo64, physics.Identity(), config)  # memory_saving="auto" is the default
    off = fit(photo64, physics.Identity(), config.replace(memory_saving="off"))
    np.testing.assert_array_equal(auto.output, off.output)
    assert not any(n.startswith("memory:") for n in auto.notes)


def _budget_between(config: FitConfig, size: int) -> tuple[int, memory.FitMemory]:
    estimate = memory.fit_memory(config, size, size, channels=3, precision="fp32", channels_last=True)
    assert estimate.checkpoint < estimate.plain
    return (estimate.checkpoint + estimate.plain) // 2 // 2**20, estimate


def test_a_small_budget_makes_auto_checkpoint_and_say_so(capsys):
    # Wide enough at 128 px that checkpointing saves more than its allowance costs.
    config = FitConfig(net_kwargs=dict(channels_down=[64] * 3, channels_up=[64] * 3, channels_skip=[4] * 3),
                       input_depth=8, iterations=1, log_every=1, device="cpu")  # fmt: skip
    budget_mb, estimate = _budget_between(config, 128)
    image = np.random.default_rng(0).random((128, 128, 3)).astype(np.float32)
    result = fit(image, physics.Identity(), config.replace(memory_budget_mb=budget_mb))
    notes = [n for n in result.notes if n.startswith("memory: checkpointing (estimate plain")]
    assert len(notes) == 1 and "> budget" in notes[0]
    assert "activation checkpointing on" in capsys.readouterr().err
    with pytest.raises(DipInputError, match="--memory-saving"):
        fit(image, physics.Identity(), config.replace(memory_budget_mb=max(1, estimate.checkpoint // 2**20 // 2)))
    # "off" neither estimates nor refuses: the fit runs plainly whatever the budget.
    plain = fit(image, physics.Identity(), config.replace(memory_budget_mb=budget_mb, memory_saving="off"))
    np.testing.assert_array_equal(plain.output, result.output)


def test_settings_are_validated():
    with pytest.raises(DipInputError, match="memory_saving"):
        tiny_fit_config(memory_saving="yes").validate()
    with pytest.raises(DipInputError, match="memory_budget_mb"):
        tiny_fit_config(memory_budget_mb=0).validate()


def test_stacked_fits_refuse_on_and_a_budget_they_cannot_meet(photo64):
    config = tiny_fit_config(iterations=1)
    with pytest.raises(DipInputError, match="vmap"):
        fit_many([photo64, photo64], physics.Identity(), config.replace(memory_saving="on"))
    with pytest.raises(DipInputError, match="batch of 2"):
        fit_many([photo64, photo64], physics.Identity(), config.replace(memory_budget_mb=1))
    assert len(fit_many([photo64, photo64], physics.Identity(), config)) == 2


def test_a_checkpoint_resumes_under_another_memory_setting(photo64, tmp_path):
    config = tiny_fit_config(iterations=8, memory_saving="off")
    ckpt = tmp_path / "fit.ckpt"
    uninterrupted = fit(photo64, physics.Identity(), config)
    with pytest.raises(FitInterrupted):
        fit(photo64, physics.Identity(), config, checkpoint_path=ckpt, hooks=[SigtermAt(3)])
    resumed = fit(photo64, physics.Identity(), config.replace(memory_saving="on", memory_budget_mb=100_000),
                  checkpoint_path=ckpt)  # fmt: skip
    assert resumed.resumed_from == 4
    np.testing.assert_array_equal(resumed.output, uninterrupted.output)


def test_the_cli_flags_reach_the_record(tmp_path, photo64):
    src = save_png(tmp_path / "noisy.png", photo64)
    out = tmp_path / "out.png"
    assert main(["denoise", str(src), "-o", str(out), "--memory-saving", "on", "--memory-budget", "64", *QUICK]) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["config"]["memory_saving"] == "on" and record["config"]["memory_budget_mb"] == 64 * 1024
    assert any(n.startswith("memory: checkpointing") for n in record["notes"])


@pytest.mark.parametrize("args", [["--memory-saving", "maybe"], ["--memory-budget", "0"],
                                  ["--memory-budget", "nan"], ["--memory-budget", "lots"]])  # fmt: skip
def test_bad_cli_values_exit_2_with_one_line(tmp_path, photo64, capsys, caplog, args):
    src = save_png(tmp_path / "noisy.png", photo64)
    out = tmp_path / "out.png"
    try:
        code = main(["denoise", str(src), "-o", str(out), *args, *QUICK])
    except SystemExit as stop:  # argparse's own checks (choices, types)
        code = stop.code
    assert code == 2 and not out.exists()
    # argparse writes its line to stderr; dip's own checks log theirs (dip.cli's handler)
    lines = capsys.readouterr().err.strip().splitlines() + [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "--memory" in lines[0]
