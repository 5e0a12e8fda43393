"""Where a fit runs (dip.fit.device.resolve_device): auto picks CUDA, then Apple's MPS, then the CPU; a device that is
unknown or missing on this machine is a DipInputError (the command line's exit code 2) with one clear sentence."""

from __future__ import annotations

import pytest
import torch

from dip.errors import DipInputError
from dip.fit.device import resolve_device


@pytest.fixture
def machine(monkeypatch):
    """Fake what the machine has: machine(cuda=..., mps=..., gpus=...)."""

    def have(cuda: bool = False, mps: bool = False, gpus: int = 1):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus if cuda else 0)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)

    return have


@pytest.mark.parametrize(
    "cuda, mps, expected",
    [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu")],
)
def test_auto_prefers_cuda_then_mps_then_cpu(machine, cuda, mps, expected):
    machine(cuda=cuda, mps=mps)
    assert resolve_device("auto") == torch.device(expected)


def test_named_devices(machine):
    machine(cuda=True, mps=True, gpus=2)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    assert resolve_device("mps") == torch.device("mps")


@pytest.mark.parametrize(
    "name, message",
    [
        ("tpu", "unknown device 'tpu'; use auto, cpu, cuda, cuda:N or mps"),
        ("xpu", "unknown device 'xpu'"),
        ("cuda:x", "unknown device 'cuda:x'"),
        ("", "unknown device ''"),
        ("cuda", "CUDA is not available"),
        ("cuda:0", "CUDA is not available"),
        ("mps", "MPS is not available"),
    ],
)
def test_unknown_or_missing_device_is_an_input_error(machine, name, message):
    machine(cuda=False, mps=False)
    with pytest.raises(DipInputError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        resolve_device(name)
    text = str(err.value)
    assert text.count(". ") == 0 and "\n" not in text  # one sentence


def test_a_cuda_index_beyond_the_machine_is_an_input_error(machine):
    machine(cuda=True, gpus=1)
    with pytest.raises(DipInputError, match="has 1 CUDA device"):
        resolve_device("cuda:3")
