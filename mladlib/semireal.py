"""Semi-real data: the real frame labels of MultiTHUMOS or Charades, simulated features.

Why it exists: the dependencies the paper's claim is about (which actions co-occur, which
follow which, how long they last) live in the labels, and the public annotation files can
be read anywhere; the I3D features that go with them are several GB. This builder keeps
the real labels and replaces the features by a simulated observation of those labels, so
a model's gain from modelling dependencies can be measured on a structure nobody designed.

Observation model (all randomness from one seed). Each class ``c`` gets a direction
``u_c``, a random unit vector of R^D, and a visibility ``s_c = v * r_c``: ``v`` is the one
sweep parameter (``visibility``, the median) and ``r_c`` is log-uniform on
``[1/spread, spread]`` (default spread 3), drawn once per class. The feature of step
``t`` is ``x_t = sum_c y[t, c] * s_c * u_c + n_t``: the sum over the classes present at
that step (the real frame labels ``y``, 3 steps per second, the inclusive rule of
:func:`mladlib.data.frame_labels`) of their scaled directions, plus Gaussian noise ``n_t``
with unit variance in every dimension, correlated over time as a stationary AR(1) process
with coefficient ``rho`` (default 0.5: neighbouring I3D features see overlapping clips).
So ``s_c`` is the signal-to-noise ratio of the best linear single-step detector of class
``c`` when it is alone, and the features' per-dimension scale is about 1. The model
knows nothing about co-occurrence or temporal order: a step's signal depends on that
step's labels only, and the noise is drawn independently of the labels (per video, from
the seed and the video id), so every dependency a model can exploit comes from the labels.

Usage::

    python -m mladlib semireal --dataset multithumos --annotations ../shared/data/multithumos \\
        --out /tmp/mt-semireal --visibility 2 --seed 0
    root = semireal.dataset_root("multithumos", annotations, ObservationModel(visibility=2))
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np

from .data import CHARADES, MULTITHUMOS, DatasetSpec, VideoRecord, frame_labels, read_annotations, read_split
from .data.spec import read_class_names
from .utils import default_mode
from .validate import WriteError

#: Bump when the observation model or the folder layout changes (cached folders are keyed by it).
BUILDER_VERSION = 1
SPECS = {"multithumos": MULTITHUMOS, "charades": CHARADES}
#: Bounds of the observation model's settings (a visibility of 1000 is noiseless
#: already; I3D features have 1024 dimensions per stream).
MAX_VISIBILITY, MAX_SPREAD, MAX_FEATURE_DIM = 1e3, 1e3, 16384
#: The largest features array one video may get (float64 while simulated), in bytes.
MAX_VIDEO_BYTES = 2**30
#: The names :func:`build` writes into its folder; a folder holding anything else is not
#: replaced.
BUILT_FILES = ("annotations.json", "features.h5", "train_list.txt", "test_list.txt",
               "classes.txt", "semireal.json")


@dataclass(frozen=True)
class ObservationModel:
    """How features are simulated from labels (see the module docstring).

    ``visibility``: median per-class signal-to-noise ratio ``v``; ``spread``: classes range
    over ``[v / spread, v * spread]`` (log-uniform); ``rho``: AR(1) coefficient of the noise
    over time; ``feature_dim``: D; ``seed``: directions, visibilities and noise.
    """

    visibility: float = 2.0
    spread: float = 3.0
    rho: float = 0.5
    feature_dim: int = 64
    features_per_second: float = 3.0
    seed: int = 0

    def __post_init__(self) -> None:
        def number(value) -> bool:
            real = (int, float, np.integer, np.floating)
            if isinstance(value, bool) or not isinstance(value, real):
                return False
            return bool(np.isfinite(value))

        def integer(value, low: int, high: int) -> bool:
            return number(value) and int(value) == value and low <= value <= high

        def need(ok: bool, message: str, value) -> None:
            if not ok:
                raise ValueError(f"{message}, got {value}")

        # bounds far beyond any useful setting: the features stay finite in float32
        v, spread, fps = self.visibility, self.spread, self.features_per_second
        need(number(v) and 0 <= v <= MAX_VISIBILITY,
             f"visibility must be a number in [0, {MAX_VISIBILITY:g}]", v)
        need(number(spread) and 1 <= spread <= MAX_SPREAD,
             f"spread must be a number in [1, {MAX_SPREAD:g}]", spread)
        need(number(self.rho) and 0 <= self.rho < 1, "rho must be in [0, 1)", self.rho)
        need(integer(self.feature_dim, 1, MAX_FEATURE_DIM),
             f"feature_dim must be an integer in [1, {MAX_FEATURE_DIM}]",
             self.feature_dim)
        need(number(fps) and 0 < fps <= 1000,
             "features_per_second must be in (0, 1000]", fps)
        need(integer(self.seed, 0, 2**63 - 1), "seed must be an integer in [0, 2**63)",
             self.seed)


@dataclass(frozen=True)
class ClassEvidence:
    """The per-class part of the observation model: ``directions (C, D)`` unit rows and
    ``visibility (C,)`` (signal-to-noise ratio of each class)."""

    directions: np.ndarray
    visibility: np.ndarray

    @property
    def signal_matrix(self) -> np.ndarray:
        """``(C, D)`` float64 rows ``s_c * u_c``: ``labels @ signal_matrix`` is the signal."""
        return self.visibility[:, None] * self.directions


def class_evidence(obs: ObservationModel, num_classes: int) -> ClassEvidence:
    """Directions and visibilities of ``num_classes`` classes, from ``obs.seed`` alone."""
    rng = np.random.default_rng([obs.seed, 0x5E31])
    directions = rng.standard_normal((num_classes, obs.feature_dim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    log_spread = np.log(obs.spread)
    ratios = np.exp(rng.uniform(-log_spread, log_spread, num_classes))
    return ClassEvidence(directions, obs.visibility * ratios)


def num_steps(duration: float, features_per_second: float = 3.0) -> int:
    """Feature steps of a video of ``duration`` seconds: ``round(duration * fps)``, at least 1."""
    return max(1, int(round(duration * features_per_second)))


def video_noise(obs: ObservationModel, video_id: str, T: int) -> np.ndarray:
    """``(T, D)`` float64 stationary AR(1) noise, unit variance per dimension; depends only
    on ``(obs.seed, video_id, T, rho, D)``, so a subset of videos gets the same noise."""
    rng = np.random.default_rng([obs.seed, 0xA015E, zlib.crc32(video_id.encode("utf-8"))])
    white = rng.standard_normal((T, obs.feature_dim))
    noise = np.empty_like(white)
    noise[0] = white[0]
    innovation = np.sqrt(1.0 - obs.rho**2)
    for t in range(1, T):  # T is a few thousand at most; a sequential loop is fine
        noise[t] = obs.rho * noise[t - 1] + innovation * white[t]
    return noise


def simulate_features(labels: np.ndarray, evidence: ClassEvidence, noise: np.ndarray) -> np.ndarray:
    """``(T, D)`` float32 features ``labels @ (s_c u_c) + noise`` of ``labels (T, C)`` 0/1.

    Step t's signal depends on row t of ``labels`` only: permuting the steps of ``labels``
    (with the same noise) permutes the signal part identically.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[1] != evidence.directions.shape[0]:
        raise ValueError(f"labels must have shape (T, {evidence.directions.shape[0]}), got {labels.shape}")
    if noise.shape != (labels.shape[0], evidence.directions.shape[1]):
        raise ValueError(f"noise must have shape {(labels.shape[0], evidence.directions.shape[1])}, got {noise.shape}")
    return (labels.astype(np.float64) @ evidence.signal_matrix + noise).astype(np.float32)


@dataclass(frozen=True)
class Source:
    """Where the real annotation files are: the JSON, optional split lists and class names."""

    annotations: Path
    train_list: Path | None
    test_list: Path | None
    classes: Path | None


def find_source(dataset: str, annotations: str | os.PathLike) -> Source:
    """The annotation files of ``dataset`` at ``annotations``: a JSON file (split lists and
    ``classes.txt`` looked for beside it), or a folder holding ``annotations.json`` or
    ``<dataset>.json`` (the layout of ``../shared/data/<dataset>``)."""
    if dataset not in SPECS:
        raise ValueError(f"dataset must be one of {sorted(SPECS)}, got {dataset!r}")
    path = Path(annotations)
    if path.is_dir():
        candidates = [path / "annotations.json", path / f"{dataset}.json"]
        found = [p for p in candidates if p.is_file()]
        if not found:
            raise FileNotFoundError(f"annotation folder {path} holds neither annotations.json nor {dataset}.json")
        path = found[0]
    elif not path.is_file():
        raise FileNotFoundError(f"annotation file or folder {path} does not exist")
    folder = path.parent

    def beside(name: str) -> Path | None:
        return folder / name if (folder / name).is_file() else None

    return Source(path, beside("train_list.txt"), beside("test_list.txt"), beside("classes.txt"))


def select_videos(
    source: Source, records: dict[str, VideoRecord], max_videos: int | None
) -> dict[str, list[str]]:
    """``{"training": ids, "testing": ids}``: the split lists (else the ``subset`` field),
    each cut to its first ``max_videos`` ids in list order when given."""
    if max_videos is not None and max_videos < 1:
        raise ValueError(f"max_videos must be >= 1, got {max_videos}")
    splits = {}
    for subset, list_path in (("training", source.train_list), ("testing", source.test_list)):
        ids = read_split(list_path) if list_path is not None else [v for v, r in records.items() if r.subset == subset]
        missing = [v for v in ids if v not in records]
        if missing:
            raise ValueError(f"{len(missing)} videos of {list_path} are not in {source.annotations}: {missing[:3]}")
        if not ids:
            raise ValueError(f"{source.annotations} has no {subset} videos")
        splits[subset] = ids[:max_videos] if max_videos is not None else ids
    both = sorted(set(splits["training"]) & set(splits["testing"]))
    if both:
        raise ValueError(f"{len(both)} videos are in both the training and the test "
                         f"split of {source.annotations.parent}: {both[:3]}")
    return splits


def build(
    dataset: str,
    annotations: str | os.PathLike,
    out: str | os.PathLike,
    obs: ObservationModel = ObservationModel(),
    max_videos: int | None = None,
) -> Path:
    """Write a semi-real dataset folder at ``out`` and return it.

    Layout (what :meth:`mladlib.data.VideoDataset.from_folder` reads): ``annotations.json``
    (the selected videos' real annotations, class ids as in the source, reversed segments
    dropped), ``features.h5`` (one ``(T, D)`` float32 dataset per video, ``T =
    round(duration * fps)``), ``train_list.txt``, ``test_list.txt``, ``classes.txt``, and
    ``semireal.json`` (the observation model and each class's visibility). Written into a
    temporary folder renamed onto ``out`` at the end.

    ``out`` may be an earlier build that holds only the builder's files (it is
    replaced); anything else there, the working directory, a folder holding it, a
    video whose id cannot name a features entry or whose features would take over
    :data:`MAX_VIDEO_BYTES`, a video in both splits: ``ValueError``, before anything
    is written. A features file that cannot fit (file size limit, disk) or a failed
    write: :class:`~mladlib.validate.WriteError` (the command line's exit status 3).
    """
    out = Path(out).resolve()  # "." has a name and a parent only once resolved
    _check_out(out)
    spec = spec_for(dataset)
    source = find_source(dataset, annotations)
    records = read_annotations(source.annotations, spec)
    splits = select_videos(source, records, max_videos)
    for ids in splits.values():
        for video_id in ids:
            _check_video(video_id, records[video_id].duration, obs)
    names = read_class_names(source.classes, spec) if source.classes is not None else None
    evidence = class_evidence(obs, spec.num_classes)

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # h5py does not fail cleanly when a write is refused (it may crash the process):
        # a features file that cannot fit is refused before it is begun
        steps = [num_steps(records[v].duration, obs.features_per_second)
                 for ids in splits.values() for v in ids]
        _check_room(out, sum(T * obs.feature_dim * 4 + 4096 for T in steps))
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as error:
        if isinstance(error, WriteError):
            raise
        raise WriteError(f"cannot write {out}: {error.strerror or error}") from None
    try:
        written: dict[str, dict] = {}
        with h5py.File(tmp / "features.h5", "w") as h5:
            for subset, ids in splits.items():
                for video_id in ids:
                    record = records[video_id]
                    T = num_steps(record.duration, obs.features_per_second)
                    labels = frame_labels(record, T, spec)
                    features = simulate_features(labels, evidence, video_noise(obs, video_id, T))
                    h5.create_dataset(video_id, data=features)
                    actions = [[int(c) + spec.class_id_base, float(s), float(e)] for c, s, e in record.actions]
                    written[video_id] = {"subset": subset, "duration": record.duration, "actions": actions}
        (tmp / "annotations.json").write_text(json.dumps(written))
        for subset, name in (("training", "train_list.txt"), ("testing", "test_list.txt")):
            (tmp / name).write_text("".join(f"{v}\n" for v in splits[subset]))
        if names is not None:
            lines = [f"c{i + spec.class_id_base:03d} {n}" for i, n in enumerate(names)] if dataset == "charades" \
                else list(names)
            (tmp / "classes.txt").write_text("".join(f"{line}\n" for line in lines))
        meta = {
            "builder_version": BUILDER_VERSION, "dataset": dataset, "observation_model": asdict(obs),
            "max_videos": max_videos, "source": source.annotations.name,
            "videos": {s: len(ids) for s, ids in splits.items()},
            "class_visibility": evidence.visibility.tolist(),
        }
        (tmp / "semireal.json").write_text(json.dumps(meta, indent=1))
        os.chmod(tmp, default_mode(directory=True))
        _replace_folder(tmp, out)
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)
        failed_write = isinstance(error, (OSError, RuntimeError))
        if failed_write and not isinstance(error, WriteError):
            # disk full, file size limit: h5py reports those as OSError or RuntimeError
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise WriteError(f"cannot write {out}: {reason}") from None
        raise
    return out


def _check_out(out: Path) -> None:
    """``ValueError`` unless :func:`build` may write the folder ``out`` (resolved):
    never the working directory or a folder holding it, never a folder that holds
    anything the builder did not write (notes, runs, links)."""
    if out.parent == out:
        raise ValueError(f"{out} is the root of the file system; name a new folder")
    cwd = Path.cwd().resolve()
    if out == cwd or out in cwd.parents:
        raise ValueError(f"{out} is (or holds) the working directory; refusing to "
                         "replace it. Name a new folder to write")
    if not out.exists() and not out.is_symlink():
        return
    foreign_folder = (f"{out}: exists and is not a semireal dataset folder; "
                      "refusing to replace it")
    if not out.is_dir():
        raise ValueError(foreign_folder)
    entries = list(out.iterdir())
    if not entries:
        return
    if not (out / "semireal.json").is_file():
        raise ValueError(foreign_folder)
    foreign = sorted(p.name for p in entries
                     if p.name not in BUILT_FILES or p.is_symlink() or not p.is_file())
    if foreign:
        shown = ", ".join(map(repr, foreign[:3])) + (", ..." if foreign[3:] else "")
        raise ValueError(f"{out}: holds {len(foreign)} files the builder did not write "
                         f"({shown}); refusing to replace it: move them away or name "
                         "another folder")


def _check_room(out: Path, size: int) -> None:
    """:class:`WriteError` when ``size`` bytes (the features file) would exceed the
    process's file size limit (``ulimit -f``) or the free space beside ``out``."""
    import resource

    need = f"cannot write {out}: its features file needs about {size / 2**20:.1f} MiB"
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and size > limit:
        raise WriteError(f"{need}, over this process's file size limit (ulimit -f) of "
                         f"{limit / 2**20:.2f} MiB")
    free = shutil.disk_usage(out.parent).free
    if size > free:
        raise WriteError(f"{need} and the disk holding {out.parent} has "
                         f"{free / 2**20:.1f} MiB free")


def _check_video(video_id: str, duration: float, obs: ObservationModel) -> None:
    """``ValueError`` naming the video when its id cannot name an HDF5 dataset or its
    features would not fit in memory."""
    if not video_id or "/" in video_id or video_id in (".", "..") or "\0" in video_id:
        raise ValueError(f"video id {video_id!r} cannot name a features entry (empty, "
                         "'.', or holds '/')")
    steps = num_steps(duration, obs.features_per_second)
    size = steps * obs.feature_dim * 8  # float64 while simulated
    if size > MAX_VIDEO_BYTES:
        raise ValueError(f"video {video_id!r}: {duration:g} s at "
                         f"{obs.features_per_second:g} features per second with "
                         f"{obs.feature_dim} dimensions is "
                         f"{size / 2**30:.1f} GiB of features, over the limit of "
                         f"{MAX_VIDEO_BYTES / 2**30:g} GiB per video")


def _replace_folder(new: Path, out: Path) -> None:
    """Rename the folder ``new`` onto ``out``; an earlier build at ``out`` is moved
    aside first (checked again: nothing was added to it meanwhile) and removed after."""
    if not out.exists():
        os.replace(new, out)
        return
    _check_out(out)
    aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old",
                                  dir=out.parent))
    os.replace(out, aside / out.name)
    try:
        os.replace(new, out)
    except BaseException:
        os.replace(aside / out.name, out)
        raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def fingerprint(dataset: str, annotations: str | os.PathLike, obs: ObservationModel, max_videos: int | None) -> str:
    """A short hash of everything that defines a built folder (the source file's bytes too)."""
    source = find_source(dataset, annotations)
    digest = hashlib.sha256(source.annotations.read_bytes())
    for extra in (source.train_list, source.test_list, source.classes):
        digest.update(extra.read_bytes() if extra is not None else b"-")
    recipe = {"version": BUILDER_VERSION, "dataset": dataset, "obs": asdict(obs), "max_videos": max_videos,
              "source": digest.hexdigest()}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def dataset_root(
    dataset: str,
    annotations: str | os.PathLike,
    obs: ObservationModel = ObservationModel(),
    max_videos: int | None = None,
    cache: str | os.PathLike | None = None,
) -> Path:
    """The built folder in the cache (``$MLADLIB_CACHE`` or ``~/.cache/mladlib``), built on
    first use and reused after; keyed by :func:`fingerprint`."""
    from .synth import cache_dir

    base = Path(cache) if cache is not None else cache_dir()
    path = base / f"semireal-{dataset}-{fingerprint(dataset, annotations, obs, max_videos)}"
    if (path / "semireal.json").is_file():
        return path
    return build(dataset, annotations, path, obs, max_videos)


def annotation_folder(dataset: str) -> Path:
    """The folder of ``dataset``'s real annotation files, for the builder's ``annotations``.

    :func:`mladlib.data.fetch_annotations` when the library has it (downloads once, checks
    SHA-256, honours ``$MLADLIB_ANNOTATIONS``); else ``$MLADLIB_ANNOTATIONS/<dataset>`` (a
    folder like ``../shared/data``). ``FileNotFoundError`` saying what to set otherwise.
    """
    from . import data

    spec_for(dataset)
    fetch = getattr(data, "fetch_annotations", None)
    if fetch is not None:
        return Path(fetch(dataset))
    local = os.environ.get("MLADLIB_ANNOTATIONS")
    if not local or not (Path(local) / dataset).is_dir():
        raise FileNotFoundError(
            f"no annotation files for {dataset}: set MLADLIB_ANNOTATIONS to a folder holding {dataset}/"
            f" (e.g. ../shared/data) or install a mladlib with data.fetch_annotations")
    return Path(local) / dataset


def spec_for(dataset: str) -> DatasetSpec:
    """The :class:`~mladlib.data.DatasetSpec` of ``dataset`` (``multithumos``/``charades``)."""
    if dataset not in SPECS:
        raise ValueError(f"dataset must be one of {sorted(SPECS)}, got {dataset!r}")
    return SPECS[dataset]


# --- Protocol v2 (benchmarks/SEMIREAL_PROTOCOL_V2.md): the control, the look-alikes ---

#: Bump when the v2 builder's control, look-alikes or layout change (cache keys use it).
BUILDER_V2_VERSION = 1
CONDITIONS = ("real", "control")


@dataclass(frozen=True)
class LookAlikes:
    """Observation model 2: classes share part of their look, in random groups.

    The classes are split at random (from the seed) into groups of ``group_size`` (a
    last group of one joins the one before); group ``k`` has a unit direction ``g_k``,
    and class ``c`` of group ``k`` looks along ``u_c = sqrt(share) g_k + sqrt(1 - share)
    e_c``, with ``e_c`` a unit vector orthogonal to ``g_k`` of its own. So two classes
    of one group have directions with cosine about ``share``, and a step where one of
    them is present is told apart from one where the other is only by the ``1 - share``
    private part, or by what else is present around it. Visibilities, noise and the
    signal ``labels @ (s_c u_c)`` are as in :class:`ObservationModel`: no co-occurrence
    or temporal term.
    """

    group_size: int = 4
    share: float = 0.8

    def __post_init__(self) -> None:
        if int(self.group_size) != self.group_size or self.group_size < 2:
            raise ValueError(
                f"group_size must be an integer >= 2, got {self.group_size}"
            )
        if not 0 <= self.share < 1:
            raise ValueError(f"share must be in [0, 1), got {self.share}")


def lookalike_groups(
    obs: ObservationModel, num_classes: int, lookalikes: LookAlikes
) -> np.ndarray:
    """``(C,)`` int group of each class: a random partition from ``obs.seed`` alone."""
    rng = np.random.default_rng([obs.seed, 0x100CA1])
    order = rng.permutation(num_classes)
    groups = np.empty(num_classes, dtype=np.int64)
    groups[order] = np.arange(num_classes) // lookalikes.group_size
    last = groups.max()
    if last > 0 and np.sum(groups == last) == 1:  # a group of one shares with nobody
        groups[groups == last] = last - 1
    return groups


def lookalike_evidence(
    obs: ObservationModel, num_classes: int, lookalikes: LookAlikes
) -> ClassEvidence:
    """:func:`class_evidence` with the directions of :class:`LookAlikes` (the same
    visibilities as observation model 1 for the same seed)."""
    base = class_evidence(obs, num_classes)
    groups = lookalike_groups(obs, num_classes, lookalikes)
    rng = np.random.default_rng([obs.seed, 0x100CA2])
    shared = rng.standard_normal((groups.max() + 1, obs.feature_dim))
    shared /= np.linalg.norm(shared, axis=1, keepdims=True)
    own = rng.standard_normal((num_classes, obs.feature_dim))
    g = shared[groups]
    own -= np.sum(own * g, axis=1, keepdims=True) * g  # orthogonal to the class's g_k
    own /= np.linalg.norm(own, axis=1, keepdims=True)
    directions = np.sqrt(lookalikes.share) * g + np.sqrt(1 - lookalikes.share) * own
    return ClassEvidence(directions, base.visibility)


def label_runs(track: np.ndarray) -> np.ndarray:
    """``(n, 2)`` int ``[first, length]`` of each maximal run of 1s in ``track (T,)``.
    """
    padded = np.concatenate([[0], np.asarray(track, dtype=np.int8) != 0, [0]]).astype(
        np.int8
    )
    change = np.flatnonzero(np.diff(padded))
    return np.stack([change[0::2], change[1::2] - change[0::2]], axis=1)


def valid_shifts(track: np.ndarray) -> np.ndarray:
    """Offsets ``k`` in ``[1, T)`` for which ``np.roll(track, k)`` keeps runs whole.

    The roll joins the original steps ``T - 1`` and ``0`` and cuts between ``T - k - 1``
    and ``T - k``; a run stays whole when the cut falls outside one (and the join
    cannot merge two, i.e. the track is not 1 at both ends: then no offset is valid).
    """
    y = np.asarray(track) != 0
    T = len(y)
    if T < 2 or (y[0] and y[-1]):
        return np.zeros(0, dtype=np.int64)
    cut = np.arange(1, T)  # the new first step is the original step T - k
    ok = ~(y[cut - 1] & y[cut])
    return (T - cut[ok]).astype(np.int64)


def control_labels(
    labels: np.ndarray, seed: int, video_id: str
) -> tuple[np.ndarray, np.ndarray]:
    """The control of protocol v2: each class's track circularly shifted on its own.

    ``labels (T, C)`` 0/1 -> ``(shifted (T, C) uint8, offsets (C,))``. For each class
    the offset is drawn uniformly (from ``seed``, the video id and the class) among
    :func:`valid_shifts`, so each class keeps, in this video, its runs (their lengths,
    and the cyclic order of runs and gaps) and its step count, while its alignment with
    every other class is drawn anew. A class absent, present throughout, or present at
    both ends of the video keeps offset 0 (the last is counted by the runner).
    """
    y = np.asarray(labels)
    if y.ndim != 2:
        raise ValueError(
            f"video {video_id!r}: labels must have shape (T, C), got {y.shape}"
        )
    out = np.zeros(y.shape, dtype=np.uint8)
    offsets = np.zeros(y.shape[1], dtype=np.int64)
    for c in range(y.shape[1]):
        track = y[:, c] != 0
        choices = (
            valid_shifts(track)
            if 0 < track.sum() < len(track)
            else np.zeros(0, dtype=np.int64)
        )
        if len(choices):
            rng = np.random.default_rng(
                [seed, 0xC047, zlib.crc32(video_id.encode("utf-8")), c]
            )
            offsets[c] = choices[rng.integers(len(choices))]
        out[:, c] = np.roll(track, offsets[c])
    return out, offsets


def step_cooccurrence(labels: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(P (C, C), counts (C,))`` over every step of ``labels`` (each ``(T_k, C)``,
    0/1): ``P[i, j]`` = fraction of the steps where class i is present that have class
    j too (NaN where i is never present); ``counts[i]``: those steps."""
    y = np.concatenate([np.asarray(l, dtype=np.float64) for l in labels])
    counts = y.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        P = (y.T @ y) / counts[:, None]
    return P, counts


def _segments_from_labels(
    labels: np.ndarray, T: int, duration: float, base: int
) -> list[list[float]]:
    """Segments ``[class id, start s, end s]`` whose inclusive frame labels
    (``frame_labels`` with ``T`` frames) are exactly ``labels``: each run
    starts and ends on a frame time."""
    from .data.labels import frame_times

    times = frame_times(T, duration)
    segments = []
    for c in range(labels.shape[1]):
        for first, length in label_runs(labels[:, c]):
            segments.append(
                [c + base, float(times[first]), float(times[first + length - 1])]
            )
    return segments


def build_condition(
    dataset: str,
    annotations: str | os.PathLike,
    out: str | os.PathLike,
    obs: ObservationModel = ObservationModel(),
    condition: str = "real",
    lookalikes: LookAlikes | None = None,
    max_videos: int | None = None,
) -> Path:
    """A v2 semi-real folder (the layout of :func:`build`): ``condition`` ``"real"``
    keeps the real annotations; ``"control"`` replaces every video's labels by
    :func:`control_labels` (drawn from ``obs.seed``) and writes them as frame-exact
    segments. ``lookalikes``: observation model 2, else model 1. Features are simulated
    from the labels written, with the same class evidence and the same per-video noise
    in both conditions (so the two differ only in the labels). ``semireal.json`` also
    holds the condition, the look-alike groups and, for the control, how many class
    tracks could not be shifted (present at both ends of their video)."""
    if condition not in CONDITIONS:
        raise ValueError(f"condition must be one of {CONDITIONS}, got {condition!r}")
    out = Path(out)
    if (
        out.exists()
        and not (out / "semireal.json").is_file()
        and (not out.is_dir() or any(out.iterdir()))
    ):
        raise ValueError(
            f"{out}: exists and is not a semireal dataset folder; refusing to replace"
            " it"
        )
    spec = spec_for(dataset)
    source = find_source(dataset, annotations)
    records = read_annotations(source.annotations, spec)
    splits = select_videos(source, records, max_videos)
    names = (
        read_class_names(source.classes, spec) if source.classes is not None else None
    )
    C = spec.num_classes
    evidence = (
        class_evidence(obs, C)
        if lookalikes is None
        else lookalike_evidence(obs, C, lookalikes)
    )

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        written: dict[str, dict] = {}
        pinned = shifted = 0
        with h5py.File(tmp / "features.h5", "w") as h5:
            for subset, ids in splits.items():
                for video_id in ids:
                    record = records[video_id]
                    T = num_steps(record.duration, obs.features_per_second)
                    labels = frame_labels(record, T, spec)
                    if condition == "control":
                        labels, offsets = control_labels(labels, obs.seed, video_id)
                        present = (labels.sum(0) > 0) & (labels.sum(0) < T)
                        pinned += int(np.sum(present & (offsets == 0)))
                        shifted += int(np.sum(offsets != 0))
                        actions = _segments_from_labels(
                            labels, T, record.duration, spec.class_id_base
                        )
                    else:
                        actions = [
                            [int(c) + spec.class_id_base, float(s), float(e)]
                            for c, s, e in record.actions
                        ]
                    features = simulate_features(
                        labels, evidence, video_noise(obs, video_id, T)
                    )
                    h5.create_dataset(video_id, data=features)
                    written[video_id] = {
                        "subset": subset,
                        "duration": record.duration,
                        "actions": actions,
                    }
        (tmp / "annotations.json").write_text(json.dumps(written))
        for subset, name in (
            ("training", "train_list.txt"),
            ("testing", "test_list.txt"),
        ):
            (tmp / name).write_text("".join(f"{v}\n" for v in splits[subset]))
        if names is not None:
            lines = (
                [f"c{i + spec.class_id_base:03d} {n}" for i, n in enumerate(names)]
                if dataset == "charades"
                else list(names)
            )
            (tmp / "classes.txt").write_text("".join(f"{line}\n" for line in lines))
        meta = {
            "builder_version": BUILDER_VERSION,
            "builder_v2_version": BUILDER_V2_VERSION,
            "dataset": dataset,
            "observation_model": asdict(obs),
            "condition": condition,
            "lookalikes": None if lookalikes is None else asdict(lookalikes),
            "lookalike_groups": (
                None
                if lookalikes is None
                else lookalike_groups(obs, C, lookalikes).tolist()
            ),
            "control_tracks": (
                {"shifted": shifted, "pinned": pinned}
                if condition == "control"
                else None
            ),
            "max_videos": max_videos,
            "source": source.annotations.name,
            "videos": {s: len(ids) for s, ids in splits.items()},
            "class_visibility": evidence.visibility.tolist(),
        }
        (tmp / "semireal.json").write_text(json.dumps(meta, indent=1))
        os.chmod(tmp, default_mode(directory=True))
        if out.exists():
            shutil.rmtree(out)  # checked above: an earlier semireal folder
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def condition_root(
    dataset: str,
    annotations: str | os.PathLike,
    obs: ObservationModel = ObservationModel(),
    condition: str = "real",
    lookalikes: LookAlikes | None = None,
    max_videos: int | None = None,
    cache: str | os.PathLike | None = None,
) -> Path:
    """:func:`build_condition`'s folder in the cache, built on first use (as
    :func:`dataset_root`, keyed by the condition and the look-alikes too)."""
    from .synth import cache_dir

    key = json.dumps(
        {
            "v1": fingerprint(dataset, annotations, obs, max_videos),
            "v2": BUILDER_V2_VERSION,
            "condition": condition,
            "lookalikes": None if lookalikes is None else asdict(lookalikes),
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    base = Path(cache) if cache is not None else cache_dir()
    path = base / f"semireal2-{dataset}-{condition}-{digest}"
    if (path / "semireal.json").is_file():
        return path
    return build_condition(
        dataset, annotations, path, obs, condition, lookalikes, max_videos
    )


def cooccurrence_departure(
    labels: list[np.ndarray], min_expected: float = 50.0
) -> tuple[float, int]:
    """How far step co-occurrence departs from independence *within each video*.

    For every pair ``i != j``: observed steps with both present, ``sum_v n_ij``, against
    the count expected if the two tracks of each video were placed independently,
    ``sum_v n_i n_j / T_v`` (what :func:`control_labels` leaves on average). Returns
    ``(mean |log((observed + 1) / (expected + 1))|, pairs counted)`` over the pairs
    expected on at least ``min_expected`` steps: near 0 when classes share steps by
    chance only (the control), large where real classes go together or avoid each other.
    """
    C = labels[0].shape[1]
    observed, expected = np.zeros((C, C)), np.zeros((C, C))
    for y in labels:
        y = np.asarray(y, dtype=np.float64)
        n = y.sum(0)
        observed += y.T @ y
        expected += np.outer(n, n) / len(y)
    counted = ~np.eye(C, dtype=bool) & (expected >= min_expected)
    ratios = np.log((observed[counted] + 1) / (expected[counted] + 1))
    return (float(np.abs(ratios).mean()) if ratios.size else float("nan")), int(
        counted.sum()
    )
