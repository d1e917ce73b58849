"""Protocol v2 of the semi-real experiment: the control, the look-alikes, the smoothing
baseline and the runner (``benchmarks/bench_semireal_v2.py``).

Made-up labels run everywhere; the checks on the real MultiTHUMOS labels run when
../shared/data is present and skip otherwise.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from mladlib import semireal, smoothing
from mladlib.data import MULTITHUMOS, frame_labels, read_annotations
from mladlib.train.checkpoint import build_from_config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_semireal_v2 as bench  # noqa: E402

SHARED = Path(os.environ.get("MLADLIB_SHARED_DATA", ROOT.parent / "shared" / "data"))
needs_shared = pytest.mark.skipif(
    not (SHARED / "multithumos").is_dir(),
    reason=f"the real annotation files are not at {SHARED}",
)
OBS = semireal.ObservationModel(visibility=2.0, feature_dim=16, seed=3)


def cyclic_runs_and_gaps(track: np.ndarray) -> list[tuple[int, int]]:
    """The cyclic sequence of (value, length) blocks of a 0/1 track, from a 1-run on."""
    y = np.asarray(track).astype(int)
    start = int(np.flatnonzero(y)[0])
    y = np.roll(y, -start)
    blocks, value, length = [], y[0], 0
    for v in y:
        if v == value:
            length += 1
        else:
            blocks.append((int(value), length))
            value, length = v, 1
    blocks.append((int(value), length))
    return blocks


def is_rotation(a: list, b: list) -> bool:
    return len(a) == len(b) and any(a == b[k:] + b[:k] for k in range(len(b)))


def random_labels(rng, T: int, C: int, segments: int = 6) -> np.ndarray:
    y = np.zeros((T, C), dtype=np.uint8)
    for c in range(C):
        for _ in range(rng.integers(0, segments)):
            s = rng.integers(0, T)
            y[s : s + rng.integers(1, 15), c] = 1
    return y


def check_tracks_kept(
    original: np.ndarray, shifted: np.ndarray, offsets: np.ndarray
) -> int:
    """Each class's runs kept (lengths as a multiset, and the cyclic run/gap order);
    returns how many present tracks were left in place."""
    pinned = 0
    for c in range(original.shape[1]):
        a, b = original[:, c], shifted[:, c]
        assert a.sum() == b.sum()
        assert sorted(semireal.label_runs(a)[:, 1]) == sorted(
            semireal.label_runs(b)[:, 1]
        ), c
        if 0 < a.sum() < len(a):
            assert is_rotation(cyclic_runs_and_gaps(a), cyclic_runs_and_gaps(b)), c
            if offsets[c] == 0:
                pinned += 1
                assert a[0] and a[-1]  # only a track at both ends stays in place
            else:
                assert np.array_equal(np.roll(a, offsets[c]), b)
    return pinned


def test_control_keeps_each_class_s_runs_exactly():
    rng = np.random.default_rng(0)
    for k in range(30):
        y = random_labels(rng, int(rng.integers(2, 300)), 7)
        shifted, offsets = semireal.control_labels(y, seed=1, video_id=f"v{k}")
        check_tracks_kept(y, shifted, offsets)


def test_control_is_drawn_per_seed_video_and_class():
    y = random_labels(np.random.default_rng(1), 200, 5)
    a = semireal.control_labels(y, 0, "x")[1]
    assert np.array_equal(a, semireal.control_labels(y, 0, "x")[1])
    assert not np.array_equal(a, semireal.control_labels(y, 1, "x")[1])
    assert not np.array_equal(a, semireal.control_labels(y, 0, "y")[1])


def test_valid_shifts_never_cut_a_run():
    track = np.array([0, 1, 1, 0, 0, 1, 0], dtype=bool)
    for k in semireal.valid_shifts(track):
        assert sorted(semireal.label_runs(np.roll(track, k))[:, 1]) == [1, 2]
    # k = 5 makes the original step 2 the first: it would cut the run at steps 1-2
    assert set(semireal.valid_shifts(track)) == {1, 2, 3, 4, 6}
    assert (
        len(semireal.valid_shifts(np.array([1, 0, 0, 1]))) == 0
    )  # both ends: left in place


def test_control_destroys_co_occurrence():
    """Class 1 copies class 0's track; after the control it is present on about as many
    of class 0's steps as on any steps (measured: P(1 | 0) against P(1))."""
    rng = np.random.default_rng(2)
    videos = []
    for _ in range(200):
        y = random_labels(rng, 240, 3)
        y[:, 1] = y[:, 0]
        videos.append(y)
    P, counts = semireal.step_cooccurrence(videos)
    assert P[0, 1] == 1.0
    shifted = [semireal.control_labels(y, 0, f"v{k}")[0] for k, y in enumerate(videos)]
    P2, counts2 = semireal.step_cooccurrence(shifted)
    marginal = counts2[1] / sum(len(y) for y in shifted)
    assert np.array_equal(counts, counts2)  # every class keeps its step count
    assert abs(P2[0, 1] - marginal) < 0.1 and P2[0, 1] < 0.5
    assert (
        semireal.cooccurrence_departure(videos)[0]
        > 3 * semireal.cooccurrence_departure(shifted)[0]
    )


@needs_shared
def test_control_on_the_real_labels():
    """On MultiTHUMOS's training labels: every class track keeps its runs, few tracks
    stay in place, and co-occurrence's departure from independence falls (measured)."""
    records = read_annotations(SHARED / "multithumos" / "multithumos.json", MULTITHUMOS)
    ids = [
        v.strip()
        for v in (SHARED / "multithumos" / "train_list.txt").read_text().split()
    ]
    real, control, pinned, present = [], [], 0, 0
    for v in ids:
        y = frame_labels(
            records[v], semireal.num_steps(records[v].duration), MULTITHUMOS
        )
        shifted, offsets = semireal.control_labels(y, 0, v)
        pinned += check_tracks_kept(y, shifted, offsets)
        present += int(np.sum((y.sum(0) > 0) & (y.sum(0) < len(y))))
        real.append(y)
        control.append(shifted)
    assert pinned / present < 0.1  # tracks at both ends of their video stay in place

    # measured on the training list: about 1.24 on the real labels, 0.15 on the control
    real_departure, pairs = semireal.cooccurrence_departure(real)
    control_departure, _ = semireal.cooccurrence_departure(control)
    assert pairs > 500 and real_departure > 1.0 and control_departure < 0.25


@pytest.fixture()
def tiny_source(tmp_path: Path) -> Path:
    return bench.smoke_source(tmp_path / "src")


def test_build_condition_control_writes_frame_exact_labels_and_the_same_noise(
    tiny_source, tmp_path
):
    real = semireal.build_condition(
        "multithumos", tiny_source, tmp_path / "real", OBS, "real"
    )
    control = semireal.build_condition(
        "multithumos", tiny_source, tmp_path / "control", OBS, "control"
    )
    v1 = semireal.build("multithumos", tiny_source, tmp_path / "v1", OBS)
    signal = semireal.class_evidence(OBS, MULTITHUMOS.num_classes).signal_matrix
    real_records = read_annotations(real / "annotations.json", MULTITHUMOS)
    control_records = read_annotations(control / "annotations.json", MULTITHUMOS)
    with (
        h5py.File(real / "features.h5") as fr,
        h5py.File(control / "features.h5") as fc,
        h5py.File(v1 / "features.h5") as f1,
    ):
        for video_id, record in real_records.items():
            x_real, x_control = fr[video_id][()], fc[video_id][()]
            T = len(x_real)
            assert np.array_equal(
                x_real, f1[video_id][()]
            )  # the real condition is builder v1's data
            y_real = frame_labels(record, T, MULTITHUMOS)
            y_control = frame_labels(control_records[video_id], T, MULTITHUMOS)
            expected, _ = semireal.control_labels(y_real, OBS.seed, video_id)
            assert np.array_equal(y_control, expected)
            noise_real = x_real - (y_real @ signal).astype(np.float32)
            noise_control = x_control - (y_control @ signal).astype(np.float32)
            np.testing.assert_allclose(noise_real, noise_control, atol=1e-4)
    meta = json.loads((control / "semireal.json").read_text())
    assert meta["condition"] == "control" and meta["control_tracks"]["shifted"] > 0


def test_lookalikes_plant_a_shared_component():
    obs = semireal.ObservationModel(visibility=1.0, feature_dim=64, seed=5)
    look = semireal.LookAlikes(group_size=4, share=0.8)
    groups = semireal.lookalike_groups(obs, 65, look)
    sizes = np.bincount(groups)
    assert sizes.min() >= 2 and sizes.sum() == 65 and set(sizes) <= {4, 5}
    ev = semireal.lookalike_evidence(obs, 65, look)
    base = semireal.class_evidence(obs, 65)
    np.testing.assert_array_equal(ev.visibility, base.visibility)
    np.testing.assert_allclose(np.linalg.norm(ev.directions, axis=1), 1.0, atol=1e-12)
    cos = ev.directions @ ev.directions.T
    same = (groups[:, None] == groups[None, :]) & ~np.eye(65, dtype=bool)
    other = groups[:, None] != groups[None, :]
    assert abs(cos[same].mean() - 0.8) < 0.03 and cos[same].min() > 0.6
    assert abs(cos[other].mean()) < 0.03 and np.abs(cos[other]).max() < 0.6
    # the group's shared direction is what its members share: its mean member direction
    for k in range(sizes.size):
        members = ev.directions[groups == k]
        g = members.mean(0) / np.linalg.norm(members.mean(0))
        np.testing.assert_allclose(members @ g, np.sqrt(0.8), atol=0.08)
    with pytest.raises(ValueError, match="share"):
        semireal.LookAlikes(share=1.0)
    with pytest.raises(ValueError, match="group_size"):
        semireal.LookAlikes(group_size=1)


def test_smooth_scores():
    x = np.zeros((9, 2))
    x[4, 0] = 1.0
    s = smoothing.smooth_scores(x, 3)
    np.testing.assert_allclose(s[3:6, 0], 1 / 3)
    assert s[:3, 0].sum() == 0 and s[6:, 0].sum() == 0 and s[:, 1].sum() == 0
    ramp = np.arange(5, dtype=float)[:, None]
    np.testing.assert_allclose(
        smoothing.smooth_scores(ramp, 3)[:, 0], [0.5, 1, 2, 3, 3.5]
    )  # ends: no padding
    np.testing.assert_array_equal(smoothing.smooth_scores(ramp, 1), ramp)
    with pytest.raises(ValueError, match="odd"):
        smoothing.smooth_scores(ramp, 4)


def test_smoothed_probabilities_stay_probabilities():
    """A run of ones after small scores: running sums alone give 1 + 2e-16, which the
    metrics refuse (the sweep's v = 4 CF runs met it); the mean stays in [0, 1]."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.random((50, 3)) * 1e-3, np.ones((200, 3)),
                        rng.random((50, 3))])
    for w in smoothing.WINDOWS:
        s = smoothing.smooth_scores(x, w)
        assert 0 <= s.min() and s.max() <= 1, w
    np.testing.assert_allclose(smoothing.smooth_scores(x, 9)[100:150], 1.0)
    assert smoothing.smooth_scores(np.zeros((0, 3)), 9).shape == (0, 3)  # no steps
    # inside the inputs' range the clip changes nothing
    ramp = np.arange(5, dtype=float)[:, None]
    np.testing.assert_array_equal(smoothing.smooth_scores(ramp, 3)[:, 0],
                                  [0.5, 1, 2, 3, 3.5])


def test_choose_window_finds_persistence_on_validation():
    """Long segments under per-step noise: a wide window wins; isolated one-step events
    under small noise: no smoothing wins."""
    rng = np.random.default_rng(0)
    y = np.zeros((400, 1), dtype=np.uint8)
    y[50:150] = y[250:330] = 1
    noisy = 1 / (1 + np.exp(-(y + rng.normal(0, 1.5, y.shape))))  # probabilities
    best, scores = smoothing.choose_window({"a": noisy}, {"a": y})
    assert best >= 9 and scores[best] > scores[1] + 0.1
    z = (rng.random((400, 1)) < 0.1).astype(np.uint8)
    sharp = 1 / (1 + np.exp(-(4 * z + rng.normal(0, 0.5, z.shape))))
    best, scores = smoothing.choose_window({"a": sharp}, {"a": z})
    assert best == 1


def test_every_model_gets_the_protocol_s_inputs(tmp_path):
    """One budget and one stopping rule for every model; real and control differ only in
    the data folder; the linear baseline gets no positional encoding."""
    budget = bench.PROTOCOL["budgets"]["cpu"]
    configs = {
        m: bench.train_config(
            "multithumos", tmp_path / "real", m, 0, budget, "cpu", tmp_path / "r"
        )
        for m in bench.PROTOCOL["models"]
    }
    base = configs["cf"].to_dict()
    for name, config in configs.items():
        d = config.to_dict()
        assert {k for k in d if d[k] != base[k]} <= {"model"}, name
        assert (
            config.patience == 6
            and config.epochs * 50 == 3000
            and config.windows_per_epoch == 8 * 50
        )
        model = build_from_config(config, 65, 64)
        assert (getattr(model, "positional_encoding", None) is not None) == (
            name != "linear"
        ), name
    control = bench.train_config(
        "multithumos", tmp_path / "control", "mlad", 0, budget, "cpu", tmp_path / "r"
    )
    diff = {
        k for k, v in control.to_dict().items() if v != configs["mlad"].to_dict()[k]
    }
    assert diff == {"root"}


def test_addendum_a_variants_differ_from_their_model_in_positions_only(tmp_path):
    """cf-nopos is CF without positions, linear-pos the linear baseline with them;
    nothing else of the protocol's inputs changes."""
    sys.path.insert(0, str(Path(bench.__file__).parent))
    import bench_semireal_v2_cf_linear as addendum

    budget = bench.PROTOCOL["budgets"]["cpu"]
    for variant, (model, options) in addendum.VARIANTS.items():
        args = ("multithumos", tmp_path, model, 0, budget, "cpu", tmp_path / "r")
        plain = bench.train_config(*args).to_dict()
        changed = bench.train_config(*args, options).to_dict()
        assert {k for k in plain if plain[k] != changed[k]} == {"positional_encoding"}
        built = build_from_config(bench.train_config(*args, options), 65, 64)
        has_positions = getattr(built, "positional_encoding", None) is not None
        assert has_positions == (variant == "linear-pos"), variant


def test_addendum_a_runner_records_each_variant_once(tmp_path, monkeypatch, capsys):
    """The addendum's runner on made-up labels with the smoke budget: one record per
    variant, seed and condition, each with its curve and library; a rerun skips them."""
    sys.path.insert(0, str(Path(bench.__file__).parent))
    import bench_semireal_v2_cf_linear as addendum

    monkeypatch.setenv("MLADLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(bench.PROTOCOL["budgets"], "cpu", bench.SMOKE_BUDGET)
    labels = bench.smoke_source(tmp_path / "labels")
    out = tmp_path / "addendum.json"
    args = ["--annotations", str(labels), "--out", str(out), "--seeds", "0"]
    assert addendum.main(args) == 0
    record = json.loads(out.read_text())
    assert sorted(record["runs"]) == sorted(
        f"m1/{c}/v1/{v}/seed0" for c in ("real", "control") for v in addendum.VARIANTS)
    for run in record["runs"].values():
        assert run["validation_curve"] and run["ended_by"] in ("plateau", "cap")
        assert run["library"]["commit"] and run["variant"] in addendum.VARIANTS
    capsys.readouterr()
    assert addendum.main(args) == 0
    assert capsys.readouterr().out == ""  # nothing retrained
    assert json.loads(out.read_text()) == record
    assert not (tmp_path / "addendum.runs").exists()
    # the protocol's rule: a variant's runs at the cap rerun with a doubled cap, each
    # replacing its run and keeping the first outcome; no other run is touched
    record["runs"]["m1/real/v1/linear-pos/seed0"]["ended_by"] = "cap"
    out.write_text(json.dumps(record))
    capped = {k for k, r in record["runs"].items()
              if r["variant"] == "linear-pos" and r["ended_by"] == "cap"}
    redo = args + ["--redo-capped", "linear-pos", "--cap-steps", "12"]
    assert addendum.main(redo) == 0
    again = json.loads(out.read_text())
    for key in capped:
        assert again["runs"][key]["cap_steps"] == 12
        first = again["runs"][key]["first_run_at_cap"]
        assert first["frame_map"] == record["runs"][key]["frame_map"]
        assert first["cap_steps"] == bench.SMOKE_BUDGET["cap_steps"]
    assert {k: v for k, v in again["runs"].items() if k not in capped} == {
        k: v for k, v in record["runs"].items() if k not in capped}
    capsys.readouterr()
    assert addendum.main(redo) == 0 and capsys.readouterr().out == ""  # done once
    with pytest.raises(SystemExit):
        addendum.main(args + ["--redo-capped", "linear-pos"])  # no cap given
    with pytest.raises(SystemExit):  # not a multiple of the checks' steps
        addendum.main(args + ["--redo-capped", "linear-pos", "--cap-steps", "6001"])


def test_plan_order_and_counts():
    runs = bench.planned_runs("multithumos")
    stages = [r["stage"] for r in runs]
    assert stages == sorted(stages, key=["main", "lookalike", "sweep"].index)
    assert stages.count("main") == 5 * 5 * 2 and stages.count("lookalike") == 50
    assert stages.count("sweep") == 3 * 3 * 5 * 2
    assert [r["key"] for r in runs[:4]] == [
        "m1/real/v1/cf/seed0",
        "m1/control/v1/cf/seed0",
        "m1/real/v1/mlad/seed0",
        "m1/control/v1/mlad/seed0",
    ]
    assert len({r["key"] for r in runs}) == len(runs)
    assert len(bench.planned_runs("charades")) == 3 * 5 * 2


def test_smoke_run_resume_split_and_merge(tmp_path, capsys):
    out = tmp_path / "smoke.json"
    assert bench.main(["--smoke", "--out", str(out), "--models", "cf", "mlad"]) == 0
    record = json.loads(out.read_text())
    keys = set(record["runs"])
    # --smoke: the main stage's models, and MLAD under the look-alikes
    expected = {
        f"m1/{c}/v1/{m}/seed0"
        for c in ("real", "control")
        for m in ("cf", "cf-smooth", "mlad")
    }
    expected |= {f"m2/{c}/v1/mlad/seed0" for c in ("real", "control")}
    assert keys == expected
    for key, r in record["runs"].items():
        assert r["library"]["commit"] and isinstance(r["library"]["clean"], bool), key
        assert len(r["per_class_ap"]) == 65 and "0" in r["action_conditional"]
        assert "pair_ap" in r
        if not key.split("/")[3] == "cf-smooth":
            assert r["ended_by"] in ("plateau", "cap") and r["validation_curve"], key
            assert r["steps"] <= bench.SMOKE_BUDGET["cap_steps"]
        else:
            assert r["window"] in smoothing.WINDOWS and r["derived_from"].endswith(
                "/cf/seed0"
            )
    assert len(record["runs"]["m1/real/v1/mlad/seed0"]["cb_attention_rows"]) == 1
    info = record["dataset_info"]["m1/control/v1/seed0"]
    assert info["condition"] == "control" and info["pair_support"]["0"]
    assert record["dataset_info"]["m2/real/v1/seed0"]["lookalike_groups"] is not None
    # a rerun trains nothing and leaves the record as it was
    before = out.read_text()
    capsys.readouterr()
    assert bench.main(["--smoke", "--out", str(out), "--models", "cf", "mlad"]) == 0
    assert "ran" not in capsys.readouterr().out
    assert json.loads(out.read_text())["runs"] == json.loads(before)["runs"]
    # split by condition into two files, then merged: the same runs
    a, b, merged = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "merged.json"
    bench.main(["--smoke", "--out", str(a), "--models", "cf", "--conditions", "real"])
    bench.main(
        ["--smoke", "--out", str(b), "--models", "cf", "--conditions", "control"]
    )
    bench.main(["--merge", str(merged), str(a), str(b)])
    joined = json.loads(merged.read_text())["runs"]
    assert set(joined) == {k for k in expected if "/cf" in k}
    for key, r in joined.items():
        assert (
            r["frame_map"] == record["runs"][key]["frame_map"]
        ), key  # one seed, one number
    # --compare: the same runs against the first record are "same"; a moved one is not
    args_a = ["--smoke", "--out", str(a), "--models", "cf", "--conditions", "real"]
    assert bench.main(args_a + ["--compare", str(out)]) == 0
    moved = json.loads(out.read_text())
    moved["runs"]["m1/real/v1/cf/seed0"]["frame_map"] += 1.0
    (tmp_path / "moved.json").write_text(json.dumps(moved))
    capsys.readouterr()
    assert bench.main(args_a + ["--compare", str(tmp_path / "moved.json")]) == 1
    assert "MOVED" in capsys.readouterr().out



def test_redo_capped_reruns_only_the_selected_runs_at_the_cap(tmp_path, capsys):
    """The protocol's cap rule in the main runner: the selected runs that ended at the
    cap rerun with the doubled cap, each keeping the first outcome (CF's smoothed run
    is derived again with it); every other run stays as it was."""
    out = tmp_path / "smoke.json"
    args = ["--smoke", "--out", str(out), "--models", "cf", "tb", "--stages", "main"]
    assert bench.main(args) == 0
    record = json.loads(out.read_text())
    assert all(r["cap_steps"] == bench.SMOKE_BUDGET["cap_steps"]
               for r in record["runs"].values() if "ended_by" in r)
    for key in record["runs"]:  # as if the first runs had no cap_steps (older ones)
        record["runs"][key].pop("cap_steps", None)
    record["runs"]["m1/real/v1/cf/seed0"]["ended_by"] = "cap"
    record["runs"]["m1/control/v1/tb/seed0"]["ended_by"] = "cap"  # not selected
    out.write_text(json.dumps(record))
    capped = {k for k, r in record["runs"].items()  # the smoke budget's cap is small
              if "/cf/" in k and r["ended_by"] == "cap"}
    replaced = capped | {k.replace("/cf/", "/cf-smooth/") for k in capped}
    redo = ["--smoke", "--out", str(out), "--stages", "main", "--models", "cf",
            "--redo-capped", "--cap-steps", "12"]
    capsys.readouterr()
    assert bench.main(redo) == 0
    again = json.loads(out.read_text())["runs"]
    assert all(again[k]["cap_steps"] == 12 and again[k]["steps"] <= 12 for k in capped)
    for key in replaced:
        first = again[key]["first_run_at_cap"]
        assert first["frame_map"] == record["runs"][key]["frame_map"]
        assert first["cap_steps"] == bench.SMOKE_BUDGET["cap_steps"]
        assert again[key]["started"] >= record["runs"][key]["started"]
    assert {k: v for k, v in again.items() if k not in replaced} == {
        k: v for k, v in record["runs"].items() if k not in replaced}
    capsys.readouterr()
    assert bench.main(redo) == 0 and "f-mAP" not in capsys.readouterr().out  # once
    with pytest.raises(SystemExit):
        bench.main(args + ["--redo-capped"])  # no cap given
    with pytest.raises(SystemExit):  # not a multiple of the checks' steps
        bench.main(args + ["--redo-capped", "--cap-steps", "13"])
    with pytest.raises(SystemExit):  # not above the first cap
        bench.main(args + ["--redo-capped", "--cap-steps", "6"])


def test_a_run_stopped_by_a_signal_leaves_the_record_as_it_was(tmp_path, capsys,
                                                               monkeypatch):
    out = tmp_path / "smoke.json"
    args = ["--smoke", "--out", str(out), "--models", "cf", "--stages", "main"]
    assert bench.main(args + ["--conditions", "real"]) == 0
    before = json.loads(out.read_text())["runs"]
    real_fit = bench._NoStandardTrainer.fit

    def fit_stopped_by_sigterm(self):
        result = real_fit(self)
        result.stopped, result.test_metrics = "SIGTERM", None  # what a SIGTERM leaves
        return result

    monkeypatch.setattr(bench._NoStandardTrainer, "fit", fit_stopped_by_sigterm)
    capsys.readouterr()
    assert bench.main(args + ["--conditions", "real", "control"]) == 130
    assert "m1/control/v1/cf/seed0 stopped by SIGTERM" in capsys.readouterr().err
    assert json.loads(out.read_text())["runs"] == before


def test_an_interrupted_run_continues_where_it_stopped(tmp_path, capsys, monkeypatch):
    args = ["--smoke", "--models", "cf", "--stages", "main", "--conditions", "real"]
    whole, split = tmp_path / "whole.json", tmp_path / "split.json"
    assert bench.main(args + ["--out", str(whole)]) == 0
    real_config = bench.train_config

    def stopping_at_step_3(*a, **kw):  # what a kill after step 3 leaves behind
        return real_config(*a, **kw).replace(stop_after_steps=3)

    monkeypatch.setattr(bench, "train_config", stopping_at_step_3)
    assert bench.main(args + ["--out", str(split)]) == 130
    last = tmp_path / "split.runs" / "m1-real-v1-cf-seed0" / "last.pt"
    assert last.exists() and "stopped by stop_after_steps" in capsys.readouterr().err
    monkeypatch.setattr(bench, "train_config", real_config)
    assert bench.main(args + ["--out", str(split)]) == 0
    assert "m1/real/v1/cf/seed0: resuming at step 3" in capsys.readouterr().out
    assert not (tmp_path / "split.runs").exists()  # removed once every run finished
    a, b = (json.loads(p.read_text())["runs"] for p in (whole, split))
    assert a.keys() == b.keys() == {"m1/real/v1/cf/seed0", "m1/real/v1/cf-smooth/seed0"}
    assert b["m1/real/v1/cf/seed0"]["resumed_at_step"] == 3
    own = ("seconds", "started", "resumed_at_step")
    for key in a:  # the same numbers as the run that was never interrupted
        assert {k: v for k, v in a[key].items() if k not in own} == {
            k: v for k, v in b[key].items() if k not in own}, key
