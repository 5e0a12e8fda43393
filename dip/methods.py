"""The DIP family (torch-free): each method's name, what it changes, the tasks it supports, its preset per task, its
own settings and where they come from.

A method is never a second fit loop: it is a choice of the one engine's parts (:mod:`dip.fit.family` turns a
:class:`~dip.fit.FitConfig`'s ``method`` into a data term, a stepper and a network). The workflow's planner, the
``dip`` command and :func:`dip.restore.restore` read this table, so they cannot disagree about which tasks a method
takes or which preset it runs. The settings' values live in the presets (:mod:`dip.presets`); the defaults below are
what a preset's ``method_settings`` leaves out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from dip.errors import DipInputError

__all__ = ["Method", "METHODS", "get_method", "check_task", "check_config", "settings_of", "preset_for"]


@dataclass(frozen=True)
class Method:
    """One member of the family.

    presets: task -> the preset it runs (the tasks it supports: its paper's; every method denoises).
    settings: the defaults of ``FitConfig.method_settings`` (what the method adds to a DIP fit).
    stop: None where the auto stop (:mod:`dip.fit.stopping`) applies; else why the fit runs its budget instead.
    packable: whether several fits may run as one batch (:func:`dip.fit.stacked.fit_many`).
    memory_saving: whether ``memory_saving="on"`` (activation checkpointing) does anything for its network.
    """

    name: str
    title: str
    description: str
    presets: dict[str, str]
    citation: str
    code: str
    settings: dict[str, Any] = field(default_factory=dict)
    stop: str | None = None
    packable: bool = True
    memory_saving: bool = True

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.presets)


METHODS: dict[str, Method] = {
    "dip": Method(
        "dip", "Deep Image Prior",
        "Adam on a random network's weights, its input fixed noise; the steps regularise (the paper's fit)",
        presets={},  # the task table's (dip.tasks): every task
        citation="Ulyanov, Vedaldi, Lempitsky, Deep Image Prior, CVPR 2018",
        code="DmitryUlyanov/deep-image-prior",
    ),
    "dd": Method(
        "dd", "Deep Decoder",
        "an under-parameterised decoder: 1x1 convolutions, bilinear upsampling, ReLU, channel normalisation; "
        "it cannot fit the noise, so no early stopping",
        presets={"denoise": "dd-denoise"},
        citation="Heckel & Hand, Deep Decoder: Concise Image Representations from Untrained Non-convolutional "
                 "Networks, ICLR 2019",
        code="reinhardh/supplement_deep_decoder",
        stop="the Deep Decoder is under-parameterised and runs its budget (its authors stop by the step count)",
        memory_saving=False,
    ),
    "dip-tv": Method(
        "dip-tv", "DIP-TV",
        "DIP's loss plus tv_weight x the isotropic total variation of the output",
        presets={"denoise": "dip-tv-denoise"},
        citation="Liu, Sun, Xu, Kamilov, Image Restoration using Total Variation Regularized Deep Image Prior, "
                 "ICASSP 2019",
        code="(no public code; the paper's objective)",
        settings={"tv_weight": 0.01},
    ),
    "sgld": Method(
        "sgld", "SGLD (Bayesian DIP)",
        "Langevin noise N(0, (param_noise_sigma x lr)^2) on the conv weights after each Adam step, Adam's weight "
        "decay; the output is the mean of the samples taken every sample_every steps after burn_in",
        presets={"denoise": "sgld-denoise"},
        citation="Cheng, Gadelha, Maji, Sheldon, A Bayesian Perspective on the Deep Image Prior, CVPR 2019",
        code="ZezhouCheng/GP-DIP",
        settings={"param_noise_sigma": 2.0, "weight_decay": 5e-8, "burn_in": 7000, "sample_every": 50},
        stop="SGLD's output is the posterior mean after burn-in, which does not overfit: it runs its budget",
        packable=False,
    ),
    "drp": Method(
        "drp", "Deep Random Projector",
        "frozen random convolutions; only the input and the batch-norm parameters are fitted, to sqrt(MSE) plus "
        "tv_weight x the anisotropic total variation",
        presets={"denoise": "drp-denoise"},
        citation="Li, Wang, Zhuang, Sun, Deep Random Projector: Accelerated Deep Image Prior, CVPR 2023",
        code="sun-umn/Deep-Random-Projector",
        settings={"tv_weight": 0.45},
        packable=False,
        memory_saving=False,
    ),
    "sure": Method(
        "sure", "DIP-SURE",
        "the network maps the noisy image to the estimate and minimises SURE (Monte-Carlo divergence, one probe, "
        "step epsilon x sigma): no ground truth, no early stopping; sigma known (--sigma) or estimated",
        presets={"denoise": "sure-denoise"},
        citation="Jo, Chun, Choi, Rethinking Deep Image Prior for Denoising, ICCV 2021; Metzler, Mousavi, Heckel, "
                 "Baraniuk, Unsupervised Learning with Stein's Unbiased Risk Estimator, 2018",
        code="gistvision/DIP-denosing",
        settings={"sigma": None, "epsilon": 0.5, "lr_milestones": [2000], "lr_gamma": 0.5},
        stop="SURE estimates the error itself and does not fit the noise: it runs its budget",
        packable=False,
    ),
}


def get_method(name: str) -> Method:
    """The method called ``name``; a one-line error naming the choices for any other."""
    method = METHODS.get(name)
    if method is None:
        raise DipInputError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}")
    return method


def check_task(name: str, task: str) -> None:
    """Refuse a task the method's paper does not do (in one line, naming the tasks it does)."""
    method = get_method(name)
    if name != "dip" and task not in method.presets:
        raise DipInputError(f"--method {name} ({method.title}) does not do {task!r}; it does "
                            f"{', '.join(method.tasks)} (use --method dip for {task})")  # fmt: skip


def preset_for(name: str, task: str) -> str | None:
    """The preset ``name`` runs for ``task`` (None for DIP: the task table chooses by the level)."""
    check_task(name, task)
    return get_method(name).presets.get(task)


def settings_of(config: Any) -> dict[str, Any]:
    """A config's method settings with the method's defaults filled in."""
    return {**get_method(config.method).settings, **dict(config.method_settings or {})}


def _number(name: str, key: str, value: Any, *, low: float = 0.0, integer: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= low
    if ok and integer:
        ok = int(value) == value
    if not ok:
        kind = "an integer" if integer else "a finite number"
        raise DipInputError(f"method {name}: {key} must be {kind} >= {low:g}, got {value!r}")


def check_config(config: Any) -> None:
    """The method, its settings and the memory mode of a FitConfig (called by ``FitConfig.validate``)."""
    method = get_method(config.method)
    given = dict(config.method_settings or {})
    unknown = sorted(set(given) - set(method.settings))
    if unknown:
        known = ", ".join(method.settings) or "none"
        raise DipInputError(f"method {method.name} has no setting {', '.join(unknown)}; its settings: {known}")
    settings = settings_of(config)
    for key in ("tv_weight", "param_noise_sigma", "weight_decay", "epsilon", "lr_gamma"):
        if key in settings:
            _number(method.name, key, settings[key])
    for key in ("burn_in",):
        if key in settings:
            _number(method.name, key, settings[key], integer=True)
    if "sample_every" in settings:
        _number(method.name, "sample_every", settings["sample_every"], low=1, integer=True)
    if settings.get("epsilon") == 0:
        raise DipInputError("method sure: epsilon must be > 0 (the divergence's finite-difference step)")
    if settings.get("sigma") is not None:
        _number(method.name, "sigma", settings["sigma"])
    for step in settings.get("lr_milestones", []) or []:
        _number(method.name, "lr_milestones", step, low=1, integer=True)
    if config.memory_saving == "on" and not method.memory_saving:
        raise DipInputError(f"--memory-saving on: the {method.title}'s network has no activation checkpointing (it "
                            "keeps little); use --memory-saving auto or off")  # fmt: skip


def describe() -> list[tuple[str, str]]:
    """One line a method: name, title, tasks, presets, settings, citation (``dip presets`` prints them)."""
    lines = []
    for method in METHODS.values():
        presets = ", ".join(f"{task}: {preset}" for task, preset in method.presets.items()) or "the task table's"
        settings = ", ".join(f"{k}={v}" for k, v in method.settings.items()) or "none of its own"
        stop = "auto stop applies" if method.stop is None else "runs its budget (no auto stop)"
        lines.append((method.name, f"{method.title}: {method.description}. Presets {presets}; settings {settings}; "
                                   f"{stop}{'' if method.packable else '; not packed'}. {method.citation} "
                                   f"[{method.code}]"))  # fmt: skip
    return lines
