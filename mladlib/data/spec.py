"""What a dataset is: class count, class-id base, feature rate, default window.

Presets :data:`MULTITHUMOS` and :data:`CHARADES` carry no class names: the names come
from the user's own ``classes.txt`` through :func:`read_class_names`.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DatasetSpec:
    """A multi-label temporal action localization dataset.

    ``class_id_base``: the id of the first class in the annotation files (MultiTHUMOS
    counts from 1, Charades from 0); class id ``k`` becomes label column
    ``k - class_id_base``. ``default_window``: the paper's sequence length T (steps).
    ``features_per_second``: nominal feature rate (I3D: one feature per 8 frames of 24 fps
    video, about 3 per second); frame labels use each video's actual rate
    ``n_features / duration`` instead. ``feature_dim``: nominal feature size (2048 for I3D
    RGB + flow); a dataset takes the real size from its feature store.
    """

    name: str
    num_classes: int
    class_id_base: int
    default_window: int
    features_per_second: float = 3.0
    feature_dim: int = 2048
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.num_classes < 1:
            raise ValueError(f"dataset {self.name!r}: num_classes must be >= 1, got {self.num_classes}")
        if self.class_id_base not in (0, 1):
            raise ValueError(f"dataset {self.name!r}: class_id_base must be 0 or 1, got {self.class_id_base}")
        if self.default_window < 1 or self.feature_dim < 1 or not self.features_per_second > 0:
            raise ValueError(
                f"dataset {self.name!r}: default_window, feature_dim and features_per_second must be positive; "
                f"got {self.default_window}, {self.feature_dim}, {self.features_per_second}"
            )
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(str(n) for n in self.class_names))
            if len(self.class_names) != self.num_classes:
                raise ValueError(
                    f"dataset {self.name!r}: {len(self.class_names)} class names for {self.num_classes} classes"
                )

    @property
    def class_ids(self) -> range:
        """The class ids the annotation files may use: ``[base, base + C)``."""
        return range(self.class_id_base, self.class_id_base + self.num_classes)

    def with_class_names(self, names: tuple[str, ...] | list[str]) -> DatasetSpec:
        """A copy of this spec holding ``names`` (column order)."""
        return dataclasses.replace(self, class_names=tuple(names))

    def replace(self, **changes) -> DatasetSpec:
        """A copy with ``changes`` applied (e.g. ``feature_dim=1024`` for RGB-only features)."""
        return dataclasses.replace(self, **changes)


#: MultiTHUMOS: 65 classes, ids 1..65, T = 128 (paper section 4).
MULTITHUMOS = DatasetSpec("multithumos", num_classes=65, class_id_base=1, default_window=128)

#: Charades: 157 classes, ids 0..156, T = 64. Class 0 is column 0 (the public MLAD code
#: subtracts 1 from Charades ids, which moves class 0 into the last column).
CHARADES = DatasetSpec("charades", num_classes=157, class_id_base=0, default_window=64)

_CHARADES_LINE = re.compile(r"^c(\d+)\s+(\S.*)$")


def read_class_names(path: str | os.PathLike, spec: DatasetSpec) -> tuple[str, ...]:
    """Class names in label-column order from a ``classes.txt``.

    Two formats: one name per line, line k holding the k-th class (MultiTHUMOS), or
    ``cNNN name`` per line with NNN the class id (Charades). Blank lines are ignored.
    Raises ``ValueError`` naming the file when the count or the ids do not fit ``spec``.
    """
    path = Path(path)
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except FileNotFoundError:
        raise FileNotFoundError(f"class-name file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read class-name file {path}: {error}") from error
    lines = [line for line in lines if line]
    matches = [_CHARADES_LINE.match(line) for line in lines]
    if lines and all(matches):
        names: list[str | None] = [None] * spec.num_classes
        for match in matches:
            class_id, name = int(match.group(1)), match.group(2).strip()
            if class_id not in spec.class_ids:
                raise ValueError(
                    f"class-name file {path}: class id {class_id} is outside {spec.name}'s ids "
                    f"{spec.class_ids.start}..{spec.class_ids.stop - 1}"
                )
            if names[class_id - spec.class_id_base] is not None:
                raise ValueError(f"class-name file {path}: class id {class_id} appears twice")
            names[class_id - spec.class_id_base] = name
        missing = [i + spec.class_id_base for i, n in enumerate(names) if n is None]
        if missing:
            raise ValueError(
                f"class-name file {path} names {len(lines)} classes but {spec.name} has {spec.num_classes} "
                f"(missing ids {missing[:5]})"
            )
        return tuple(names)  # type: ignore[arg-type]
    if len(lines) != spec.num_classes:
        raise ValueError(f"class-name file {path} names {len(lines)} classes but {spec.name} has {spec.num_classes}")
    return tuple(lines)


#: The file that describes a dataset of one's own (``--dataset custom``), in its folder
#: or beside its annotation file.
DATASET_SPEC_FILE = "dataset.json"
_SPEC_KEYS = {"name", "num_classes", "class_id_base", "features_per_second",
              "default_window", "feature_dim"}


def read_dataset_spec(path: str | os.PathLike) -> DatasetSpec:
    """A :class:`DatasetSpec` from a JSON file such as::

        {"name": "kitchen", "num_classes": 12, "class_id_base": 0,
         "features_per_second": 3.0, "default_window": 64}

    ``num_classes`` and ``class_id_base`` (0 or 1: the id of the first class in the
    annotation file) are required: neither is guessed. ``features_per_second``
    (default 3.0, I3D at 24 fps), ``default_window`` (default 64 steps), ``feature_dim``
    and ``name`` (default: the folder's name) are optional. ``FileNotFoundError`` or
    ``ValueError`` naming the file.
    """
    import json

    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} does not exist: a dataset of your own needs it, e.g. "
            '{"num_classes": 12, "class_id_base": 0, "features_per_second": 3.0}'
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read dataset description {path}: {error}") from error
    if not isinstance(raw, dict):
        raise ValueError(f"dataset description {path} must hold a JSON object")
    unknown = sorted(set(raw) - _SPEC_KEYS)
    missing = sorted({"num_classes", "class_id_base"} - set(raw))
    if unknown or missing:
        raise ValueError(f"dataset description {path}: "
                         + (f"unknown keys {unknown}" if unknown else "")
                         + ("; " if unknown and missing else "")
                         + (f"missing {missing} (never guessed)" if missing else ""))
    for key in ("num_classes", "class_id_base", "default_window", "feature_dim"):
        value = raw.get(key)
        if value is not None and (isinstance(value, bool)
                                  or not isinstance(value, int)):
            raise ValueError(f"dataset description {path}: {key} must be a whole "
                             f"number, got {value!r}")
    rate = raw.get("features_per_second", 3.0)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)):
        raise ValueError(f"dataset description {path}: features_per_second must be a "
                         f"number, got {rate!r}")
    try:
        return DatasetSpec(
            str(raw.get("name") or path.parent.name or "custom"), raw["num_classes"],
            raw["class_id_base"], raw.get("default_window", 64), float(rate),
            raw.get("feature_dim", 2048))
    except ValueError as error:
        raise ValueError(f"dataset description {path}: {error}") from None
