"""A part of a config to run: ``only`` (paths) and ``select`` (names), checked against what the config defines.

``only`` is a path or a list of paths ``dataset[/task[/level[/image[/seedN]]]]`` (``set5/sr/x4``,
``set5/sr/x4/head``, ``color9/denoise/sigma25/hill/seed1``); a fit is kept when one of them is a prefix of its own
path. ``select`` keeps what every one of its lists names (``datasets``, ``tasks``, ``levels``, ``images``,
``seeds``). Both may be given. With either, the paper's other experiments and the learning curves run only when
``select: {experiments: [...]}`` names them (``learning_curves`` for Fig. 2). A name the config does not define ends
in one line saying what it does define. Torch-free: the planner (:mod:`dip.pipeline.plan`) asks :meth:`Selection.keeps`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dip.errors import DipInputError
from dip.tasks import level_label

SELECT_KEYS = ("datasets", "tasks", "levels", "images", "seeds", "experiments")


def _as_list(value) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, (str, int, float)) else list(value)


@dataclass(frozen=True)
class Selection:
    """What to keep; :meth:`all` keeps everything."""

    paths: tuple[tuple[str, ...], ...] = ()
    names: Mapping[str, tuple] = field(default_factory=dict)

    @classmethod
    def all(cls) -> Selection:
        return cls()

    @classmethod
    def from_config(cls, config: Mapping) -> Selection:
        paths = []
        for entry in _as_list(config.get("only")):
            parts = tuple(p for p in str(entry).strip().strip("/").split("/") if p)
            if not parts or len(parts) > 5:
                raise DipInputError(f"config: only: {entry!r} is not dataset[/task[/level[/image[/seedN]]]]")
            paths.append(parts)
        select = dict(config.get("select") or {})
        unknown = sorted(set(select) - set(SELECT_KEYS))
        if unknown:
            raise DipInputError(f"config: select: unknown key(s) {unknown} (known: {', '.join(SELECT_KEYS)})")
        names = {k: tuple(_as_list(v)) for k, v in select.items() if v is not None}
        return cls(tuple(paths), names)

    @property
    def active(self) -> bool:
        return bool(self.paths or self.names)

    def keeps(self, dataset: str, task: str, level: str, image: str | None = None, seed: int | None = None) -> bool:
        """Whether the fit (or, with ``image``/``seed`` None, any fit of that level / image) is kept. ``level``: the
        level's label (``x4``)."""
        own = [dataset, task, level] + ([image] if image is not None else []) + ([f"seed{seed}"] if seed is not None
                                                                                 else [])  # fmt: skip
        if self.paths and not any(self._prefix(p, own) for p in self.paths):
            return False
        checks = (("datasets", dataset), ("tasks", task), ("images", image), ("seeds", seed))
        for key, value in checks:
            if key in self.names and value is not None and value not in self._values(key):
                return False
        if "levels" in self.names:
            labels = {self._label(task, v) for v in self.names["levels"]}
            if level not in labels:
                return False
        return True

    def keeps_extra(self, name: str) -> bool:
        """Whether a paper experiment (or ``learning_curves``) runs."""
        return not self.active or name in self.names.get("experiments", ())

    def _values(self, key):
        return {int(v) for v in self.names[key]} if key == "seeds" else set(map(str, self.names[key]))

    @staticmethod
    def _label(task: str, value) -> str | None:
        """The label of a level given as a number (4, 25, 0.5; also as text, as ``--config`` passes it) or as its
        label (x4)."""
        try:
            return level_label(task, Selection._number(value) if isinstance(value, str) else value)
        except (DipInputError, ValueError, TypeError):
            return str(value)

    @staticmethod
    def _prefix(path: Sequence[str], own: Sequence[str]) -> bool:
        """``path`` matches ``own`` on every component both have (a level given as a number or as its label)."""
        for i, (want, have) in enumerate(zip(path, own)):
            if want == have or (i == 2 and Selection._label(own[1], Selection._number(want)) == have):
                continue
            return False
        return True

    @staticmethod
    def _number(text: str):
        try:
            return float(text)
        except ValueError:
            return text

    def check(self, defined: Mapping[tuple[str, str], Mapping]) -> None:
        """Every name and path component refers to something the config defines: ``defined`` maps (dataset, task)
        to ``{"levels": [labels], "images": [...], "seeds": [...]}``."""
        datasets = sorted({d for d, _ in defined})
        tasks = sorted({t for _, t in defined})
        for path in self.paths:
            self._check_path(path, defined, datasets)
        for key, known in (("datasets", datasets), ("tasks", tasks)):
            for value in self.names.get(key, ()):
                if value not in known:
                    raise DipInputError(f"config: select: {key}: {value!r} is not run by the config (it runs "
                                        f"{', '.join(known)})")  # fmt: skip
        images = sorted({i for spec in defined.values() for i in spec["images"]})
        for value in self.names.get("images", ()):
            if str(value) not in images:
                raise DipInputError(f"config: select: images: {value!r} is in no dataset of the config "
                                    f"(images: {', '.join(images)})")  # fmt: skip
        seeds = sorted({int(s) for spec in defined.values() for s in spec["seeds"]})
        for value in self.names.get("seeds", ()):
            if int(value) not in seeds:
                raise DipInputError(f"config: select: seeds: {value!r} is run by no experiment of the config "
                                    f"(seeds: {', '.join(map(str, seeds))})")  # fmt: skip
        labels = sorted({(t, lv) for (_, t), spec in defined.items() for lv in spec["levels"]})
        for value in self.names.get("levels", ()):
            if not any(self._label(t, value) == lv for t, lv in labels):
                raise DipInputError(f"config: select: levels: {value!r} is run by no experiment of the config "
                                    f"(levels: {', '.join(sorted({lv for _, lv in labels}))})")  # fmt: skip

    def check_extras(self, known: Sequence[str]) -> None:
        """Every name of ``select: {experiments: [...]}`` is one the config defines (``known``: its paper
        experiments and ``learning_curves``)."""
        for value in self.names.get("experiments", ()):
            if value not in known:
                raise DipInputError(f"config: select: experiments: {value!r} is not an experiment of the config "
                                    f"(experiments: {', '.join(known) or 'none'})")  # fmt: skip

    def describe(self) -> str:
        """The selection as the config gives it, for a message: ``only: [set5/sr], select: {tasks: [sr]}``."""
        parts = [f"only: [{', '.join('/'.join(p) for p in self.paths)}]"] if self.paths else []
        if self.names:
            lists = (f"{key}: [{', '.join(map(str, values))}]" for key, values in self.names.items())
            parts.append(f"select: {{{', '.join(lists)}}}")
        return ", ".join(parts)

    def _check_path(self, path, defined, datasets):
        text = "/".join(path)
        d = path[0]
        if d not in datasets:
            raise DipInputError(f"config: only: {text!r}: no experiment of the config runs dataset {d!r} "
                                f"(it runs {', '.join(datasets)})")  # fmt: skip
        if len(path) < 2:
            return
        tasks = sorted(t for dd, t in defined if dd == d)
        if path[1] not in tasks:
            raise DipInputError(f"config: only: {text!r}: dataset {d!r} runs no task {path[1]!r} "
                                f"(it runs {', '.join(tasks)})")  # fmt: skip
        spec = defined[(d, path[1])]
        if len(path) >= 3 and not any(self._prefix(path[:3], [d, path[1], lv]) for lv in spec["levels"]):
            raise DipInputError(f"config: only: {text!r}: {d}/{path[1]} runs no level {path[2]!r} "
                                f"(levels: {', '.join(spec['levels'])})")  # fmt: skip
        if len(path) >= 4 and path[3] not in spec["images"]:
            raise DipInputError(f"config: only: {text!r}: dataset {d!r} has no image {path[3]!r} in the config "
                                f"(images: {', '.join(spec['images'])})")  # fmt: skip
        if len(path) == 5 and path[4] not in [f"seed{s}" for s in spec["seeds"]]:
            raise DipInputError(f"config: only: {text!r}: {d}/{path[1]} runs no {path[4]!r} "
                                f"(seeds: {', '.join(map(str, spec['seeds']))})")  # fmt: skip
