"""mladlib.metrics against the slow reference written from the equations (tests/reference_metrics.py).

Every output (aggregates, per-pair matrices, counts) must match to 1e-9, on random
inputs, heavy ties, absent and always-present classes, videos shorter than tau, a single
video, torch inputs, and the real MultiTHUMOS test labels when ../shared/data is present.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from mladlib.metrics import (
    ActionConditionalResult,
    action_conditional,
    action_conditional_sweep,
    charades25_frames,
    condition_mask,
    frame_map,
    frames_from_videos,
    per_class_ap,
    standard_metrics,
)
from mladlib.utils import seed_everything
from reference_metrics import (
    frame_labels_of_test_split,
    quiet,
    reference_action_conditional,
    reference_condition,
    reference_per_class_ap,
    reference_standard_metrics,
)

TOL = 1e-9
SHARED = Path(os.environ.get("MLADLIB_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
CASES = [(tau, window) for tau in (0, 1, 5, 20, -5) for window in ("paper", "official")
         if not (tau < 0 and window == "official")]  # the official window has no tau < 0


@pytest.fixture(autouse=True)
def _seed():
    seed_everything(0)


def random_videos(seed: int, lengths=(40, 3, 65, 1, 17), C: int = 7, density: float = 0.3, decimals: int | None = None):
    """Labels as runs (so windows see structure) plus noise; scores correlated with labels."""
    rng = np.random.default_rng(seed)
    scores, labels = [], []
    for T in lengths:
        y = (rng.random((T, C)) < density).astype(np.int64)
        y |= np.roll(y, 1, axis=0) & (rng.random((T, C)) < 0.5)  # runs
        s = 1 / (1 + np.exp(-(2 * y - 1) - rng.normal(0, 1.2, (T, C))))
        if decimals is not None:
            s = np.round(s, decimals)  # heavy ties, some exactly at the threshold
        scores.append(s)
        labels.append(y)
    return scores, labels


def assert_matches_reference(result: ActionConditionalResult, ref: dict) -> None:
    assert result.n_pairs == ref["n_pairs"]
    for key in ("support", "n_predict", "n_correct"):
        np.testing.assert_array_equal(getattr(result, key), ref[key], err_msg=key)
    for key, attr in (("precision", "precision"), ("recall", "recall"), ("f1", "f1"), ("ap", "map")):
        pair, ref_pair = getattr(result, f"pair_{key}"), ref[f"pair_{key}"]
        np.testing.assert_array_equal(np.isnan(pair), np.isnan(ref_pair), err_msg=f"NaN pattern of pair_{key}")
        np.testing.assert_allclose(pair, ref_pair, rtol=0, atol=TOL, equal_nan=True, err_msg=f"pair_{key}")
        if ref["n_pairs"] == 0:
            assert np.isnan(getattr(result, attr))
        else:
            assert abs(getattr(result, attr) - ref[key]) <= TOL, key


# --------------------------------------------------------------------------------------
# action-conditional metrics (eq. 9-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("tau,window", CASES)
def test_action_conditional_matches_reference_on_random_inputs(seed, tau, window):
    scores, labels = random_videos(seed)
    ref = quiet(reference_action_conditional, scores, labels, tau, 0.5, window)
    for backend in ("numpy", "torch"):
        result = action_conditional(scores, labels, tau, 0.5, window=window, backend=backend)
        assert_matches_reference(result, ref)
    assert ref["n_pairs"] > 0 or (tau == 1 and window == "official")


@pytest.mark.parametrize("tau,window", CASES)
def test_heavy_ties_and_scores_at_the_threshold(tau, window):
    scores, labels = random_videos(3, decimals=1)
    assert sum(int((s == 0.5).sum()) for s in scores) > 0
    ref = quiet(reference_action_conditional, scores, labels, tau, 0.5, window)
    assert_matches_reference(action_conditional(scores, labels, tau, window=window), ref)
    assert_matches_reference(action_conditional(scores, labels, tau, window=window, backend="torch"), ref)


def test_classes_never_present_and_always_present():
    scores, labels = random_videos(4, C=6)
    for y in labels:
        y[:, 1] = 0  # never occurs
        y[:, 4] = 1  # always present
    for tau in (0, 5, -5):
        ref = quiet(reference_action_conditional, scores, labels, tau)
        result = action_conditional(scores, labels, tau)
        assert_matches_reference(result, ref)
        assert np.isnan(result.pair_ap[1]).all()  # never evaluated: no positive
        assert not result.counted[:, 1].any()  # never conditions
        if tau != 0:  # always present, so never "absent now but seen recently"
            assert not result.counted[:, 4].any()


def test_videos_shorter_than_tau_and_windows_never_cross_videos():
    scores, labels = random_videos(5, lengths=(3, 1, 2, 4, 19, 2))
    for tau in (20, -20):
        assert_matches_reference(action_conditional(scores, labels, tau),
                                 quiet(reference_action_conditional, scores, labels, tau))
    # A positive at the end of video 0 conditions the frames before it, none of video 1 ...
    zeros = [np.zeros((4, 2)), np.zeros((4, 2))]
    y0, y1 = np.zeros((4, 2), int), np.zeros((4, 2), int)
    y0[3, 0] = 1
    frames = frames_from_videos(zeros, [y0, y1])
    assert not condition_mask(frames, 3).any()
    assert np.flatnonzero(condition_mask(frames, -3).numpy()[:, 0]).tolist() == [0, 1, 2]
    # ... and one at the start of video 1 the frames after it, none of video 0.
    frames = frames_from_videos(zeros, [y1, y0[::-1].copy()])
    assert np.flatnonzero(condition_mask(frames, 3).numpy()[:, 0]).tolist() == [5, 6, 7]
    assert not condition_mask(frames, -3).any()


def test_single_video():
    scores, labels = random_videos(6, lengths=(80,))
    for tau, window in CASES:
        assert_matches_reference(action_conditional(scores, labels, tau, window=window),
                                 quiet(reference_action_conditional, scores, labels, tau, 0.5, window))


@pytest.mark.parametrize("tau,window", CASES)
def test_condition_mask_equals_the_equation(tau, window):
    scores, labels = random_videos(7, lengths=(30, 2, 25))
    frames = frames_from_videos(scores, labels)
    expected = np.concatenate(reference_condition(labels, tau, window))
    np.testing.assert_array_equal(condition_mask(frames, tau, window).numpy(), expected)


def test_windows_paper_versus_official_on_a_handmade_video():
    y = np.zeros((12, 1), int)
    y[5] = 1  # "Jump" at step 5
    frames = frames_from_videos([np.zeros((12, 1))], [y])
    paper = np.flatnonzero(condition_mask(frames, 3, "paper").numpy()[:, 0])
    official = np.flatnonzero(condition_mask(frames, 3, "official").numpy()[:, 0])
    precedes = np.flatnonzero(condition_mask(frames, -3, "paper").numpy()[:, 0])
    assert paper.tolist() == [6, 7, 8]  # eq. 11: t* in [t - 3, t]
    assert official.tolist() == [6, 7]  # public code: t* in (t - 3, t]
    assert precedes.tolist() == [2, 3, 4]  # t* in [t, t + 3]
    assert not condition_mask(frames, 1, "official").any()  # (t - 1, t] holds only t itself


def test_threshold_is_inclusive_and_other_thresholds_match():
    scores, labels = random_videos(8, decimals=1)
    for threshold in (0.0, 0.3, 0.5, 0.9, 1.0):
        ref = quiet(reference_action_conditional, scores, labels, 0, threshold)
        result = action_conditional(scores, labels, 0, threshold)
        assert_matches_reference(result, ref)
    at_half = action_conditional(scores, labels, 0, 0.5)
    S, Y = np.concatenate(scores), np.concatenate(labels).astype(bool)
    assert at_half.n_predict[0, 1] == int(((S[:, 0] >= 0.5) & Y[:, 1]).sum())


def test_no_counted_pair_gives_nan_means():
    scores, labels = random_videos(9)
    result = action_conditional(scores, labels, 1, window="official")
    assert result.n_pairs == 0 and not result.counted.any()
    assert all(np.isnan(v) for v in result.as_dict().values())
    zero = action_conditional(scores, [np.zeros_like(y) for y in labels], 0)
    assert zero.n_pairs == 0 and np.isnan(zero.map) and np.isnan(zero.f1_of_means)


def test_sweep_equals_single_calls_and_f1_is_mean_of_pair_f1():
    scores, labels = random_videos(10)
    sweep = action_conditional_sweep(scores, labels, (0, 5, 20))
    assert list(sweep) == [0, 5, 20]
    for tau, result in sweep.items():
        single = action_conditional(scores, labels, tau)
        for key in ("pair_precision", "pair_recall", "pair_f1", "pair_ap", "support", "n_predict", "n_correct"):
            np.testing.assert_array_equal(getattr(result, key), getattr(single, key))
        assert result.f1 == pytest.approx(np.nanmean(result.pair_f1), abs=TOL)
        p, r = result.precision, result.recall
        assert result.f1_of_means == pytest.approx(2 * p * r / (p + r), abs=TOL)


def test_torch_inputs_give_the_numpy_numbers():
    scores, labels = random_videos(11)
    expected = action_conditional(scores, labels, 5)
    as_torch = action_conditional([torch.tensor(s, dtype=torch.float64) for s in scores],
                                  [torch.tensor(y, dtype=torch.bool) for y in labels], 5)
    for key in ("pair_precision", "pair_recall", "pair_f1", "pair_ap", "support", "n_predict", "n_correct"):
        np.testing.assert_array_equal(getattr(as_torch, key), getattr(expected, key))
    # float32 scores and uint8 labels: the reference on the same float32 values
    s32 = [torch.tensor(s, dtype=torch.float32) for s in scores]
    u8 = [torch.tensor(y, dtype=torch.uint8) for y in labels]
    ref = quiet(reference_action_conditional, [s.numpy() for s in s32], [y.numpy() for y in u8], 5)
    assert_matches_reference(action_conditional(s32, u8, 5), ref)
    assert_matches_reference(action_conditional(s32, u8, 5, backend="torch"), ref)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_inputs_are_exact():
    scores, labels = random_videos(12, decimals=2)
    for tau in (0, 20, -5):
        ref = quiet(reference_action_conditional, scores, labels, tau)
        result = action_conditional([torch.tensor(s, device="cuda") for s in scores],
                                    [torch.tensor(y, device="cuda") for y in labels], tau)
        assert_matches_reference(result, ref)
    ap = per_class_ap([torch.tensor(s, device="cuda") for s in scores],
                      [torch.tensor(y, device="cuda") for y in labels])
    np.testing.assert_allclose(ap, quiet(reference_per_class_ap, scores, labels), atol=TOL, equal_nan=True)


def test_pair_lookup_by_name():
    scores, labels = random_videos(13, C=4)
    names = ["Jump", "Fall", "Run", "Sit"]
    result = action_conditional(scores, labels, 5)
    pair = result.pair("Fall", "Jump", names)  # AP(i = Fall | j = Jump, tau = 5)
    assert pair["evaluated"] == "Fall" and pair["given"] == "Jump" and pair["tau"] == 5
    assert pair["ap"] == result.pair_ap[1, 0] and pair["support"] == result.support[1, 0]
    assert pair == {**result.pair(1, 0), "evaluated": "Fall", "given": "Jump"}
    diagonal = result.pair("Run", "Run", names)
    assert not diagonal["counted"] and np.isnan(diagonal["ap"])
    with pytest.raises(ValueError, match="not among"):
        result.pair("Fly", "Jump", names)
    with pytest.raises(ValueError, match="pass class_names"):
        result.pair("Fall", "Jump")
    with pytest.raises(ValueError, match="3 names"):
        result.pair("Fall", "Jump", names[:3])
    with pytest.raises(ValueError, match="outside"):
        result.pair(4, 0)


def test_result_is_frozen():
    result = action_conditional(*random_videos(14), 0)
    with pytest.raises(Exception):
        result.map = 1.0
    with pytest.raises(ValueError):
        result.pair_ap[0, 1] = 1.0
    assert set(result.as_dict()) == {"P_AC", "R_AC", "F1_AC", "mAP_AC"}
    assert all(0 <= v <= 1 for v in result.as_dict().values())
    assert result.support.dtype == np.int64 and result.pair_ap.shape == (7, 7)


# --------------------------------------------------------------------------------------
# frame mAP


def test_per_class_ap_and_frame_map_equal_sklearn():
    scores, labels = random_videos(15, decimals=2)
    for y in labels:
        y[:, 2] = 0  # a class without positives
    S, Y = np.concatenate(scores), np.concatenate(labels)
    expected = np.array([average_precision_score(Y[:, c], S[:, c]) if Y[:, c].any() else np.nan
                         for c in range(Y.shape[1])])
    for backend in ("numpy", "torch"):
        ap = per_class_ap(scores, labels, backend=backend)
        np.testing.assert_allclose(ap, expected, rtol=0, atol=TOL, equal_nan=True)
    value, per_class = frame_map(scores, labels, return_per_class=True)
    assert value == pytest.approx(np.nanmean(expected), abs=TOL)
    np.testing.assert_allclose(per_class, expected, atol=TOL, equal_nan=True)
    # "nonzero" (sum / count_nonzero with absent classes at 0) equals "present" for exact APs
    assert frame_map(scores, labels, average="nonzero") == pytest.approx(value, abs=TOL)
    assert np.isnan(frame_map(scores, [np.zeros_like(y) for y in labels]))


def test_charades25_sampling():
    lengths = (100, 10, 25, 0, 7)
    frames = charades25_frames(lengths)
    assert frames.shape == (100,)
    assert frames[:25].tolist() == [4 * j for j in range(25)]  # floor(j * 100 / 25)
    assert frames[25:50].tolist() == [100 + (j * 10) // 25 for j in range(25)]  # short video repeats frames
    assert frames[50:75].tolist() == list(range(110, 135))
    assert frames[75:].tolist() == [135 + (j * 7) // 25 for j in range(25)]  # the empty video adds none
    scores, labels = random_videos(16, lengths=(60, 30, 12), decimals=2)
    chosen = charades25_frames([60, 30, 12])
    S, Y = np.concatenate(scores)[chosen], np.concatenate(labels)[chosen]
    expected = [average_precision_score(Y[:, c], S[:, c]) for c in range(Y.shape[1]) if Y[:, c].any()]
    assert frame_map(scores, labels, sample="charades25") == pytest.approx(np.mean(expected), abs=TOL)


# --------------------------------------------------------------------------------------
# standard metrics (table 2)


@pytest.mark.parametrize("seed", [0, 1])
def test_standard_metrics_equal_their_definitions(seed):
    scores, labels = random_videos(seed, decimals=1, density=0.15)
    labels[0][:5] = 0  # frames without any label (and, with low scores, without prediction)
    scores[0][:5] = 0.1
    for zero_division in (0, 1):
        got = standard_metrics(scores, labels, jaccard_zero_division=zero_division).as_dict()
        expected = reference_standard_metrics(scores, labels, 0.5, zero_division)
        assert list(got) == ["HL", "ZL", "RL", "CE", "JS", "LRAP"]
        for key in got:
            assert got[key] == pytest.approx(expected[key], abs=TOL), key
    at_03 = reference_standard_metrics(scores, labels, 0.3)
    assert standard_metrics(scores, labels, 0.3).as_dict() == pytest.approx(at_03, abs=TOL)


# --------------------------------------------------------------------------------------
# bad input


def test_value_errors_name_the_fault():
    scores, labels = random_videos(17, lengths=(5, 6))
    bad_label = [labels[0], labels[1].astype(float)]
    bad_label[1][2, 3] = 0.5
    nan_score = [scores[0], scores[1].copy()]
    nan_score[1][0, 0] = np.nan
    high_score = [scores[0], scores[1] * 3]
    cases = [
        (([], []), "empty"),
        ((scores, labels[:1]), "2 videos but labels has 1"),
        ((scores[0], labels[0]), "list with one"),
        (([scores[0][:, 0]], [labels[0][:, 0]]), "must be 2-D"),
        (([scores[0]], [labels[0][:4]]), "shape"),
        (([scores[0], scores[1][:, :3]], [labels[0], labels[1][:, :3]]), "video 1 has 3 classes"),
        ((scores, bad_label), "labels of video 1 must be exactly 0 or 1, found 0.5"),
        ((scores, [labels[0], labels[1] * 2]), "labels of video 1 must be exactly 0 or 1"),
        ((nan_score, labels), "scores of video 1 contain NaN"),
        ((high_score, labels), r"scores of video 1 must lie in \[0, 1\]"),
        (([np.zeros((0, 3))], [np.zeros((0, 3))]), "0 frames"),
        (([np.zeros((2, 0))], [np.zeros((2, 0))]), "0 classes"),
        ((["ab"], [labels[0]]), "real numbers"),
    ]
    for (s, y), message in cases:
        for fn in (lambda s, y: action_conditional(s, y, 0), per_class_ap, standard_metrics):
            with pytest.raises(ValueError, match=message):
                fn(s, y)
    with pytest.raises(ValueError, match="video 1 \\('vid-b'\\)"):
        action_conditional(nan_score, labels, video_ids=["vid-a", "vid-b"])
    with pytest.raises(ValueError, match="video_ids has 1"):
        action_conditional(scores, labels, video_ids=["vid-a"])
    label_nan = [labels[0].astype(float), labels[1]]
    label_nan[0][0, 0] = np.nan
    with pytest.raises(ValueError, match="labels of video 0"):
        frame_map(scores, label_nan)


def test_value_errors_for_bad_options():
    scores, labels = random_videos(18, lengths=(5,))
    for kwargs, message in [
        (dict(tau=2.5), "tau must be an integer"),
        (dict(window="exact"), "window must be"),
        (dict(tau=-3, window="official"), "tau < 0"),
        (dict(threshold=float("nan")), "finite"),
        (dict(threshold="0.5"), "number"),
        (dict(backend="jax"), "backend"),
    ]:
        with pytest.raises(ValueError, match=message):
            action_conditional(scores, labels, **kwargs)
    with pytest.raises(ValueError, match="taus is empty"):
        action_conditional_sweep(scores, labels, ())
    with pytest.raises(ValueError, match="average"):
        frame_map(scores, labels, average="all")
    with pytest.raises(ValueError, match="sample"):
        frame_map(scores, labels, sample="charades50")
    with pytest.raises(ValueError, match="jaccard_zero_division"):
        standard_metrics(scores, labels, jaccard_zero_division=0.5)


# --------------------------------------------------------------------------------------
# real MultiTHUMOS test labels


def multithumos_test_labels() -> tuple[list[str], list[np.ndarray]]:
    """Frame labels of the real MultiTHUMOS test videos (see ``frame_labels_of_test_split``)."""
    path = SHARED / "multithumos" / "multithumos.json"
    if not path.is_file():
        pytest.skip(f"real annotations not found at {path} (set MLADLIB_SHARED_DATA)")
    return frame_labels_of_test_split(path, 65, first_id=1)


@pytest.mark.slow
def test_real_multithumos_test_labels_with_noisy_scores():
    ids, labels = multithumos_test_labels()
    assert len(labels) == 213 and sum(len(y) for y in labels) > 100_000
    rng = np.random.default_rng(0)
    scores = [(1 / (1 + np.exp(-(2.0 * y - 1 + rng.normal(0, 1.0, y.shape))))).astype(np.float32) for y in labels]
    # The fast path over every test video, against the reference on a subset (the full
    # reference takes minutes): 12 videos with several co-occurring and following actions.
    subset = sorted(range(len(labels)), key=lambda k: -int(labels[k].any(0).sum()))[:12]
    sub_scores, sub_labels = [scores[k] for k in subset], [labels[k] for k in subset]
    sweep = action_conditional_sweep(sub_scores, sub_labels, (0, 20), video_ids=[ids[k] for k in subset])
    for tau in (0, 20):
        ref = quiet(reference_action_conditional, sub_scores, sub_labels, tau)
        assert ref["n_pairs"] > 100
        assert_matches_reference(sweep[tau], ref)
    full = action_conditional_sweep(scores, labels, (0, 20))
    assert full[0].n_pairs > 1000  # the paper counts 1322 co-occurring pairs on the test set
    np.testing.assert_allclose(per_class_ap(scores, labels), quiet(reference_per_class_ap, scores, labels),
                               rtol=0, atol=TOL, equal_nan=True)
