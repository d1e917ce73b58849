"""The embedded dataset: untrimmed synthetic "sports videos" whose action dependencies are
planted and known, written to disk in exactly the real MultiTHUMOS layout.

Why it exists: the real I3D features are several GB and often unobtainable; this dataset
lets every chapter run in minutes on a CPU, through the very code path real features take
(`annotations.json` in the shared JSON layout with times in seconds, one HDF5 dataset of
features per video, split lists, `classes.txt`), and it knows the truth the paper can only
illustrate: which actions co-occur, which follow which.

How a video is made (all randomness from one seed):

1. **Scene and script.** A video belongs to a scene (basketball, volleyball, high jump,
   long jump, pole vault, discus, weightlifting). The scene's script strings *episodes*
   together, separated by idle gaps; an episode is a sequence of *phases*, each a set of
   actions active together for a few steps. Actions in one phase co-occur (dribble with
   run); consecutive phases plant "follows" dependencies (fall after jump, release after
   wind-up). Generic actions (run, jump, fall, throw, stand) appear in several scenes.
2. **Background actors.** Walk and sit happen at random, independently of the foreground,
   in any scene: the paper's failure case (section 6), a dependency that does not exist.
3. **Features** at 3 steps per second, ``x_t = context + sum_a s_a v_a P[a, view] + noise``:
   each action has a visual prototype (a unit vector), scaled by its visibility ``v_a`` and
   by a random amplitude ``s_a`` per instance. Generic actions are filmed from several
   angles: one of several prototype vectors (``views``) is drawn per instance, and for
   "view-dependent" actions the sign of ``s_a`` is random too, which a linear classifier
   cannot undo but class features (eq. 1, a ReLU) can. The scene's context vector is shared
   by the two court sports (each other scene has its own). Noise is white plus a slowly
   varying AR(1) drift.
4. **Ambiguity by design.** Look-alike pairs share one prototype and are told apart only
   by what co-occurs with them (a basketball *guard* happens while the opponent dribbles, a
   *block* with a jump; a *pass* is thrown running, a *shot* jumping; a volleyball *bump*
   is played squatting, a *set* standing) or by what came before (a *fall* looks like the
   background *sit* but follows a jump; a discus *release* looks like a *throw* but follows
   the wind-up; a *dunk* looks like a *spike* but follows dribbling). Whole-activity labels
   (high jump, long jump, pole vault, throw discus, clean and jerk) have no look of their
   own: they are present exactly while their parts are. A volleyball *serve* is nearly
   invisible (0.4 of the usual visibility): what gives it away is the toss just before it. So
   the co-occurrence branch and the temporal branch each have something to solve that the
   per-frame baselines cannot.

The planted graphs are saved beside the data (`dependencies.json`) so the book can compare
what attention learned with the truth.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import h5py
import numpy as np

from .data import DatasetSpec, VideoDataset
from .utils import atomic_path, default_mode

GENERATOR_VERSION = 2
FEATURES_PER_SECOND = 3.0

# --- the action vocabulary -------------------------------------------------------------
@dataclass(frozen=True)
class Look:
    """How an action appears in the features.

    ``prototype``: key of its visual prototype (actions sharing a key look alike);
    ``visibility``: scale of the prototype; ``signed``: the sign is random per instance
    (view-dependent: a linear classifier cannot undo it, a ReLU pair can); ``views``:
    number of distinct prototype vectors, one drawn per instance (an action filmed from
    several angles needs several detectors).
    """

    prototype: str
    visibility: float = 1.0
    signed: bool = False
    views: int = 1


ACTIONS: dict[str, Look] = {
    # generic actions, shared by several scenes: filmed from many angles
    "Run": Look("run", 1.0, True, 2),
    "Jump": Look("jump", 1.0, True, 2),
    "Fall": Look("down"),  # looks like Sit; only a preceding jump tells them apart
    "Throw": Look("throw"),  # looks like DiscusRelease; the wind-up before tells them apart
    "Stand": Look("stand", 0.8, True, 2),
    "Squat": Look("squat", 1.0, True, 2),
    # background actors, independent of the foreground
    "Walk": Look("walk", 0.9, True),
    "Sit": Look("down"),
    # scene-specific actions; look-alike pairs are told apart by what co-occurs
    "BasketballDribble": Look("dribble", 1.0, True, 3),
    "BasketballPass": Look("armswing"),  # with Run; looks like BasketballShot
    "BasketballShot": Look("armswing"),  # with Jump
    "BasketballGuard": Look("defend"),  # with the opponent's Dribble; looks like BasketballBlock
    "BasketballBlock": Look("defend"),  # with a Jump
    "BasketballDunk": Look("slam", 1.0, True),  # looks like VolleyballSpike; preceded by dribbling
    "VolleyballBump": Look("hands"),  # with Squat; looks like VolleyballSet
    "VolleyballSet": Look("hands"),  # with Stand
    "VolleyballSpike": Look("slam", 1.0, True),  # preceded by a set
    "VolleyballServe": Look("serve", 0.4),  # nearly invisible: known by the toss before it
    "HighJump": Look("highjump", 0.0),  # a whole attempt: seen only through its parts
    "LongJump": Look("longjump", 0.0),  # likewise: run-up, jump, landing in the sand
    "PoleVault": Look("polevault", 0.0),  # likewise, with a pole
    "DiscusWindUp": Look("windup", 1.0, True, 3),
    "DiscusRelease": Look("throw"),
    "ThrowDiscus": Look("throwdiscus", 0.0),  # a whole throw: seen only through its parts
    "CleanAndJerk": Look("cleanjerk", 0.0),  # a whole lift: seen only through its parts
}
CLASS_NAMES: tuple[str, ...] = tuple(ACTIONS)
BACKGROUND_ACTIONS = ("Walk", "Sit")


@dataclass(frozen=True)
class Phase:
    """Actions active together for ``duration`` steps (inclusive range); kept w.p. ``p``."""

    actions: tuple[str, ...]
    duration: tuple[int, int]
    p: float = 1.0


@dataclass(frozen=True)
class Scene:
    context: str
    episodes: tuple[tuple[float, tuple[Phase, ...]], ...]  # (weight, phases)
    gap: tuple[int, int] = (3, 12)


SCENES: dict[str, Scene] = {
    "basketball": Scene("court", (
        (0.45, (Phase(("BasketballDribble", "Run"), (4, 9)),
                Phase(("BasketballPass", "Run"), (2, 3)),
                Phase(("BasketballDribble", "Run"), (3, 7), p=0.7),
                Phase(("BasketballShot", "Jump"), (2, 3)))),
        (0.3, (Phase(("BasketballGuard", "BasketballDribble"), (4, 9)),
               Phase(("BasketballBlock", "Jump"), (2, 3), p=0.7))),
        (0.25, (Phase(("BasketballDribble", "Run"), (4, 9)),
                Phase(("BasketballDunk", "Jump"), (2, 3)),
                Phase(("Fall",), (2, 4), p=0.7))),
    )),
    "volleyball": Scene("court", (
        (0.6, (Phase(("VolleyballBump", "Squat"), (2, 3)),
               Phase(("VolleyballSet", "Stand"), (2, 3)),
               Phase(("VolleyballSpike", "Jump"), (2, 3)),
               Phase(("Fall",), (2, 3), p=0.5))),
        (0.4, (Phase(("Stand",), (3, 6)),
               Phase(("Throw",), (2, 3)),
               Phase(("VolleyballServe",), (2, 3)))),
    )),
    "highjump": Scene("track", (
        (1.0, (Phase(("Run", "HighJump"), (6, 12)),
               Phase(("Jump", "HighJump"), (2, 3)),
               Phase(("Fall", "HighJump"), (2, 4)))),
    ), gap=(6, 20)),
    "longjump": Scene("sandpit", (
        (1.0, (Phase(("Run", "LongJump"), (6, 12)),
               Phase(("Jump", "LongJump"), (2, 3)),
               Phase(("Fall", "LongJump"), (2, 4)))),
    ), gap=(6, 20)),
    "polevault": Scene("vault", (
        (1.0, (Phase(("Run", "PoleVault"), (6, 12)),
               Phase(("Jump", "PoleVault"), (2, 3)),
               Phase(("Fall", "PoleVault"), (2, 4)))),
    ), gap=(6, 20)),
    "discus": Scene("field", (
        (1.0, (Phase(("DiscusWindUp", "ThrowDiscus"), (4, 8)),
               Phase(("DiscusRelease", "ThrowDiscus"), (2, 3)))),
    ), gap=(6, 20)),
    "weightlifting": Scene("gym", (
        (1.0, (Phase(("Squat", "CleanAndJerk"), (3, 6)),
               Phase(("Stand", "CleanAndJerk"), (3, 8)))),
    ), gap=(6, 20)),
}


@dataclass(frozen=True)
class SynthConfig:
    """Size and difficulty of the embedded dataset. Lengths are in steps (3 per second)."""

    num_train: int = 320
    num_test: int = 80
    length: tuple[int, int] = (96, 320)
    feature_dim: int = 128
    amplitude: float = 3.0  # prototype norm at visibility 1, in units of the per-dim noise
    amplitude_jitter: float = 0.3  # instance amplitude ~ U(1 - j, 1 + j)
    context_strength: float = 1.0
    noise_std: float = 0.7
    drift_std: float = 0.4  # stationary std of the AR(1) drift
    drift_rho: float = 0.9
    background_rate: float = 0.7  # probability that a video has a background actor
    seed: int = 0

    @property
    def size_name(self) -> str:
        return f"{self.num_train}x{self.num_test}-F{self.feature_dim}"


SIZES: dict[str, SynthConfig] = {
    "default": SynthConfig(),
    "tiny": SynthConfig(num_train=12, num_test=6, length=(40, 90), feature_dim=32),
    # 200/213 videos of about 217 s (650 steps) on average, 2048-d: MultiTHUMOS-sized
    "multithumos": SynthConfig(num_train=200, num_test=213, length=(150, 1150), feature_dim=2048),
}


@dataclass
class _Video:
    labels: np.ndarray  # (T, C) uint8
    activation: np.ndarray  # (T, n_prototypes) float: signed, scaled prototype weights
    segments: list[tuple[int, int, int]] = field(default_factory=list)  # (class, first, last)


def _paint(video: _Video, cls: int, first: int, last: int, weight: float, row: int) -> None:
    video.labels[first : last + 1, cls] = 1
    video.activation[first : last + 1, row] += weight
    video.segments.append((cls, first, last))


def _prototype_rows() -> dict[str, int]:
    """First row of each prototype key in the prototype matrix; a key has ``views`` rows."""
    views: dict[str, int] = {}
    for look in ACTIONS.values():
        views[look.prototype] = max(views.get(look.prototype, 1), look.views)
    rows, start = {}, 0
    for key in sorted(views):
        rows[key] = start
        start += views[key]
    return rows


def _make_video(scene: Scene, T: int, cfg: SynthConfig, rng: np.random.Generator, proto_rows: dict[str, int]) -> _Video:
    C = len(CLASS_NAMES)
    n_rows = max(proto_rows[l.prototype] + l.views for l in ACTIONS.values())
    video = _Video(np.zeros((T, C), np.uint8), np.zeros((T, n_rows)))
    cls = {name: i for i, name in enumerate(CLASS_NAMES)}

    def paint(name: str, first: int, last: int) -> None:
        look = ACTIONS[name]
        weight = cfg.amplitude * look.visibility * rng.uniform(1 - cfg.amplitude_jitter, 1 + cfg.amplitude_jitter)
        if look.signed and rng.random() < 0.5:
            weight = -weight
        row = proto_rows[look.prototype] + int(rng.integers(look.views))
        _paint(video, cls[name], first, last, weight, row)

    weights = np.array([w for w, _ in scene.episodes])
    t = int(rng.integers(1, scene.gap[1] + 1))  # never start at step 0 (see write_layout)
    while True:
        phases = scene.episodes[rng.choice(len(weights), p=weights / weights.sum())][1]
        planned = [(ph, int(rng.integers(ph.duration[0], ph.duration[1] + 1))) for ph in phases if rng.random() < ph.p]
        if t + sum(d for _, d in planned) > T - 1:
            break
        for phase, duration in planned:
            for name in phase.actions:
                paint(name, t, t + duration - 1)
            t += duration
        t += int(rng.integers(scene.gap[0], scene.gap[1] + 1))

    if rng.random() < cfg.background_rate:  # a background actor, blind to the foreground
        t = int(rng.integers(1, 30))
        while t < T - 1:
            name = BACKGROUND_ACTIONS[int(rng.integers(len(BACKGROUND_ACTIONS)))]
            duration = int(rng.integers(4, 16))
            last = min(t + duration - 1, T - 1)
            paint(name, t, last)
            t = last + 1 + int(rng.integers(5, 40))
    return video


def _possible_predecessors(phases: tuple[Phase, ...], k: int) -> list[Phase]:
    """The phases that can come right before phase ``k`` of an episode: phase ``k - 1``,
    and the one before it too when ``k - 1`` may be skipped, and so on."""
    before = []
    for j in range(k - 1, -1, -1):
        before.append(phases[j])
        if phases[j].p >= 1:
            break
    return before


def planted_dependencies() -> dict:
    """The planted graphs, ``C x C`` 0/1 lists indexed ``[i][j]``.

    ``cooccurrence[i][j]``: some phase holds both i and j. ``follows[i][j]``: a phase holding
    i can come right after a phase holding j (directly, or because the optional phases
    between them were skipped), and i was not already active in that phase.
    """
    C = len(CLASS_NAMES)
    idx = {name: i for i, name in enumerate(CLASS_NAMES)}
    co = np.zeros((C, C), int)
    follows = np.zeros((C, C), int)
    for scene in SCENES.values():
        for _, phases in scene.episodes:
            for k, phase in enumerate(phases):
                for a in phase.actions:
                    for b in phase.actions:
                        if a != b:
                            co[idx[a], idx[b]] = 1
                for before in _possible_predecessors(phases, k):
                    for a in set(phase.actions) - set(before.actions):
                        for b in before.actions:
                            follows[idx[a], idx[b]] = 1
    shared: dict[str, list[str]] = {}
    for name, look in ACTIONS.items():
        shared.setdefault(look.prototype, []).append(name)
    return {
        "classes": list(CLASS_NAMES),
        "cooccurrence": co.tolist(),
        "follows": follows.tolist(),
        "shared_prototype": [names for names in shared.values() if len(names) > 1],
        "whole_activity": [n for n, look in ACTIONS.items() if look.visibility == 0],
        "low_visibility": [n for n, look in ACTIONS.items() if 0 < look.visibility < 0.5],
        "view_dependent": [n for n, look in ACTIONS.items() if look.signed],
        "views": {n: look.views for n, look in ACTIONS.items()},
        "background": list(BACKGROUND_ACTIONS),
        "scenes": {name: {"context": s.context,
                          "episodes": [[list(ph.actions) for ph in phases] for _, phases in s.episodes]}
                   for name, s in SCENES.items()},
    }


def generate(cfg: SynthConfig) -> dict[str, dict]:
    """Generate every video in memory: ``{video_id: {"subset", "features" (T, F) float32,
    "labels" (T, C) uint8, "segments"}}``. Deterministic in ``cfg`` (seed included)."""
    rng = np.random.default_rng([GENERATOR_VERSION, cfg.seed])
    proto_rows = _prototype_rows()
    n_rows = max(proto_rows[l.prototype] + l.views for l in ACTIONS.values())
    F = cfg.feature_dim
    P = rng.standard_normal((n_rows, F))
    P /= np.linalg.norm(P, axis=1, keepdims=True)  # (n_prototype_views, F), unit norm
    contexts = sorted({s.context for s in SCENES.values()})
    context_vec = rng.standard_normal((len(contexts), F))
    context_vec *= cfg.context_strength / np.linalg.norm(context_vec, axis=1, keepdims=True)
    scene_names = list(SCENES)
    videos: dict[str, dict] = {}
    for subset, count, prefix in (("training", cfg.num_train, "video_train"), ("testing", cfg.num_test, "video_test")):
        for k in range(count):
            scene_name = scene_names[k % len(scene_names)] if k < len(scene_names) else scene_names[int(rng.integers(len(scene_names)))]
            scene = SCENES[scene_name]
            T = int(rng.integers(cfg.length[0], cfg.length[1] + 1))
            video = _make_video(scene, T, cfg, rng, proto_rows)
            drift = np.empty((T, F))
            innovation = rng.standard_normal((T, F)) * cfg.drift_std * np.sqrt(1 - cfg.drift_rho**2)
            drift[0] = rng.standard_normal(F) * cfg.drift_std
            for t in range(1, T):
                drift[t] = cfg.drift_rho * drift[t - 1] + innovation[t]
            x = (video.activation @ P  # (T, F): every active prototype, signed and scaled
                 + context_vec[contexts.index(scene.context)]
                 + drift
                 + rng.standard_normal((T, F)) * cfg.noise_std)
            videos[f"{prefix}_{k + 1:04d}"] = {
                "subset": subset, "scene": scene_name, "features": x.astype(np.float32),
                "labels": video.labels, "segments": video.segments,
            }
    return videos


def write_layout(videos: dict[str, dict], root: str | Path, cfg: SynthConfig) -> Path:
    """Write ``videos`` to ``root`` in the real layout (MultiTHUMOS-style, 1-based class ids).

    A segment covering steps ``a..b`` is written as ``[a - 0.5, b + 0.5] / fps`` seconds, so
    the inclusive rule (MLAD code) and the strict rule (super-events code) both give back
    exactly steps ``a..b``. Files are written into a temporary folder that is renamed onto
    ``root`` at the end, so an interrupted run leaves nothing half-written.
    """
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        annotations = {}
        with h5py.File(tmp / "features.h5", "w") as h5:
            for vid, v in videos.items():
                T = len(v["features"])
                h5.create_dataset(vid, data=v["features"])
                annotations[vid] = {
                    "subset": v["subset"],
                    "duration": T / FEATURES_PER_SECOND,
                    "actions": [[c + 1, (a - 0.5) / FEATURES_PER_SECOND, (b + 0.5) / FEATURES_PER_SECOND]
                                for c, a, b in sorted(v["segments"], key=lambda s: (s[1], s[0]))],
                }
        (tmp / "annotations.json").write_text(json.dumps(annotations))
        for subset, name in (("training", "train_list.txt"), ("testing", "test_list.txt")):
            (tmp / name).write_text("".join(f"{vid}\n" for vid, v in videos.items() if v["subset"] == subset))
        (tmp / "classes.txt").write_text("".join(f"{c}\n" for c in CLASS_NAMES))
        (tmp / "scenes.json").write_text(json.dumps({vid: v["scene"] for vid, v in videos.items()}))
        (tmp / "dependencies.json").write_text(json.dumps(planted_dependencies(), indent=1))
        (tmp / "config.json").write_text(json.dumps({"generator_version": GENERATOR_VERSION, **asdict(cfg)}, indent=1))
        os.chmod(tmp, default_mode(directory=True))
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def cache_dir() -> Path:
    """Where generated datasets are kept: ``$MLADLIB_CACHE`` or ``~/.cache/mladlib``;
    ``ValueError`` naming it when it is a file."""
    path = Path(os.environ.get("MLADLIB_CACHE") or Path.home() / ".cache" / "mladlib")
    if path.exists() and not path.is_dir():
        where = "MLADLIB_CACHE" if os.environ.get("MLADLIB_CACHE") else "the cache"
        raise ValueError(f"{where} {path} is a file, not a folder; point MLADLIB_CACHE "
                         "at a folder")
    return path


def sized_config(size: str = "default", seed: int = 0) -> SynthConfig:
    """The :class:`SynthConfig` of a named size with ``seed``."""
    if size not in SIZES:
        raise ValueError(f"unknown synthetic size {size!r}; choose one of {sorted(SIZES)}")
    return dataclasses.replace(SIZES[size], seed=seed)


def fingerprint(cfg: SynthConfig) -> str:
    """A short hash of everything that defines the generated data: the generator version,
    the size and seed, the vocabulary and the scripts. Cached copies are keyed by it, so a
    changed generator never reuses stale files."""
    recipe = {  # the orders too: they give the class ids and the scenes of the first videos
        "version": GENERATOR_VERSION, "config": asdict(cfg), "fps": FEATURES_PER_SECOND,
        "class_order": list(CLASS_NAMES), "scene_order": list(SCENES),
        "actions": {n: asdict(look) for n, look in ACTIONS.items()}, "background": BACKGROUND_ACTIONS,
        "scenes": {n: asdict(scene) for n, scene in SCENES.items()},
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def dataset_root(size: str = "default", seed: int = 0, root: str | Path | None = None) -> Path:
    """Path of the embedded dataset, generating it on first use (then reused).

    ``size``: ``"default"`` (trains in about a minute on 2 CPU cores), ``"tiny"`` (tests),
    ``"multithumos"`` (MultiTHUMOS-sized: 200/213 videos, about 650 steps each, 2048-d).
    """
    cfg = sized_config(size, seed)
    path = Path(root) if root is not None else cache_dir() / f"synthetic-{size}-seed{seed}-{fingerprint(cfg)}"
    if (path / "config.json").exists():
        _refresh_dependencies(path)
        return path
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        # never replace what the caller put there (write_layout swaps the whole folder)
        raise ValueError(f"{path} exists and is not an embedded dataset (no config.json); choose a new folder")
    return write_layout(generate(cfg), path, cfg)


def _refresh_dependencies(root: Path) -> None:
    """Rewrite a cached folder's ``dependencies.json`` if it differs from the current graphs.

    The fingerprint names the data; the graphs are derived from the same scripts, and a
    folder written before a fix of that derivation (optional phases, say) must not keep
    reporting the old graph.
    """
    current = planted_dependencies()
    try:
        stale = read_dependencies(root) != current
    except (OSError, ValueError):
        stale = True
    if stale:
        with atomic_path(root / "dependencies.json") as tmp:
            tmp.write_text(json.dumps(current, indent=1))


def synthetic_spec(size: str = "default") -> DatasetSpec:
    """The :class:`~mladlib.data.DatasetSpec` of the embedded dataset at ``size``.

    MultiTHUMOS-like conventions: 1-based class ids, 3 features per second; default window
    T = 64 steps (about 21 s).
    """
    if size not in SIZES:
        raise ValueError(f"unknown synthetic size {size!r}; choose one of {sorted(SIZES)}")
    return DatasetSpec(
        "synthetic", num_classes=len(CLASS_NAMES), class_id_base=1, default_window=64,
        features_per_second=FEATURES_PER_SECOND, feature_dim=SIZES[size].feature_dim, class_names=CLASS_NAMES,
    )


def load_split(split: str = "train", size: str = "default", seed: int = 0, in_memory: bool = True) -> VideoDataset:
    """The ``"train"`` or ``"test"`` split of the embedded dataset, generated on first use."""
    return VideoDataset.from_folder(dataset_root(size, seed), split, synthetic_spec(size), in_memory=in_memory)


def read_dependencies(root: str | Path) -> dict:
    """The planted graphs saved with a generated dataset (see :func:`planted_dependencies`)."""
    return json.loads((Path(root) / "dependencies.json").read_text())
