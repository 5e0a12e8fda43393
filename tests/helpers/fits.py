"""Fit hooks that simulate what stops a job: a kill, SIGTERM, a divergence (no dip import: importable without torch)."""

from __future__ import annotations

import os
import signal


class CrashAt:
    """A fit hook that simulates a job killed without warning (SIGKILL, node failure) right after step ``step``.

    It has the four hook methods itself (no dip import here, so helpers stay importable without torch)."""

    def __init__(self, step: int):
        self.step = step

    def on_start(self, state):
        pass

    def on_step(self, state):
        if state.step == self.step:
            raise KeyboardInterrupt("simulated kill")

    def on_log(self, state, record):
        pass

    def on_end(self, state):
        pass


class SigtermAt(CrashAt):
    """A fit hook that sends this process SIGTERM (as SLURM does before preempting a job) right after step ``step``."""

    def on_step(self, state):
        if state.step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


class PoisonAt(CrashAt):
    """A fit hook that makes the network's weights NaN after step ``step``, as a divergence would."""

    def on_step(self, state):
        if state.step == self.step:
            import torch

            with torch.no_grad():
                for p in state.net.parameters():
                    p.fill_(float("nan"))
