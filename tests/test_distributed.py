"""DistributedDataParallel on 2 CPU processes (Gloo), started by torchrun.

The test starts this very file under ``python -m torch.distributed.run --nproc_per_node=2``;
as a worker (``__main__``) it trains a few steps on the tiny embedded dataset and saves
what its rank holds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mladlib.data import load_predictions
from mladlib.train import (
    DistributedContext,
    Trainer,
    evaluate,
    load_checkpoint,
    load_model,
    load_splits,
    make_config,
    setup_distributed,
    train,
)
from mladlib.train.inference import shard_indices

REPO = Path(__file__).resolve().parents[1]


def worker_config(run_dir: Path, **overrides):
    """2 epochs of 12 batches on the tiny dataset; no dropout and positions of fixed
    amplitude, so one process can replay the run bit for bit (under "auto", DDP folds both
    ranks' windows into one update of the running RMS where one process accumulating
    makes two)."""
    settings = dict(synthetic_size="tiny", hidden_dim=16, num_layers=1, window=16, batch_size=4, epochs=2,
                    windows_per_epoch=48, dropout=0.0, num_threads=1, device="cpu", run_dir=str(run_dir),
                    positional_scale=1.0)
    return make_config("synthetic", **{**settings, **overrides})


def default_config(run_dir: Path):
    """The same tiny run with the model's default options (dropout, ``positional_scale="auto"``)."""
    return make_config("synthetic", synthetic_size="tiny", hidden_dim=16, num_layers=1, window=16, batch_size=4,
                       epochs=2, windows_per_epoch=48, num_threads=1, device="cpu", run_dir=str(run_dir))


@pytest.fixture(autouse=True)
def _environment(tmp_path_factory, monkeypatch):
    threads = torch.get_num_threads()
    monkeypatch.setenv("MLADLIB_CACHE", str(tmp_path_factory.getbasetemp() / "mladlib-cache"))
    monkeypatch.setenv("MLADLIB_PROGRESS", "0")
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


@pytest.mark.slow
def test_two_gloo_processes_train_as_one(tmp_path):
    done = torchrun([__file__, str(tmp_path)], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    final = [r["final"] for r in ranks]
    # both ranks end with the very same weights, and rank 0 wrote them
    assert final[0].keys() == final[1].keys()
    assert all(torch.equal(final[0][k], final[1][k]) for k in final[0])
    last = load_checkpoint(tmp_path / "run" / "last.pt", kind="training")
    assert all(torch.equal(last["model"][k], final[0][k]) for k in final[0])
    # each rank took half of every epoch's batches: 12 batches of 4 -> 6 steps of 2 x 4
    assert last["batches_per_epoch"] == 6 and last["step"] == 12
    assert len(last["rng"]) == 2  # both ranks' RNG states, for resuming
    log = (tmp_path / "run" / "train.log").read_text()
    assert log.count("epoch   2/2") == 1  # rank 0 alone logs

    # the test metrics, gathered from both ranks, equal a one-process evaluation of best.pt
    metrics = [json.loads((tmp_path / f"metrics{r}.json").read_text()) for r in range(2)]
    assert metrics[0] == metrics[1]
    model, config = load_model(tmp_path / "run" / "best.pt")
    test = load_splits(config, ("test",)).test
    single = json.loads(json.dumps(evaluate(model, test, window=16).to_dict()))
    assert single.keys() == metrics[0].keys()
    assert single["frame_map"] == pytest.approx(metrics[0]["frame_map"], abs=1e-6)
    assert single["standard"] == pytest.approx(metrics[0]["standard"], abs=1e-6)
    for tau, row in metrics[0]["action_conditional"].items():
        assert single["action_conditional"][tau] == pytest.approx(row, abs=1e-6)
    assert list(load_predictions(tmp_path / "run" / "test_predictions.h5")) == test.video_ids

    # 2 ranks x batch 4 averaging their gradients = one process accumulating 2 batches of 4:
    # rank r takes batches r, r + 2, ...; (g0 + g1) / 2 and g0 / 2 + g1 / 2 round alike
    # (halving is exact), so the weights agree to the bit
    alone = train(worker_config(tmp_path / "alone", grad_accumulation=2))
    alone_last = load_checkpoint(tmp_path / "alone" / "last.pt")["model"]
    assert alone.steps == 12
    for name, weight in final[0].items():
        assert torch.equal(weight, alone_last[name]), name
    val = [[h["val_frame_map"] for h in history] for history in (last["history"], alone.history)]
    assert val[0] == val[1]


@pytest.mark.slow
def test_two_gloo_processes_share_the_running_feature_scale(tmp_path):
    """With the default options every rank folds all ranks' windows into the running RMS of
    ``positional_scale="auto"``: both ranks and last.pt hold the same scale (and weights),
    and the test metrics the ranks scored on their shards equal one process scoring best.pt."""
    done = torchrun([__file__, str(tmp_path), "defaults"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    final = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True)["final"] for r in range(2)]
    key = "positional_encoding.feature_sq"
    assert float(final[0][key]) != 1.0  # it has followed the features
    assert final[0].keys() == final[1].keys()
    assert all(torch.equal(final[0][k], final[1][k]) for k in final[0]), [
        k for k in final[0] if not torch.equal(final[0][k], final[1][k])]
    last = load_checkpoint(tmp_path / "run" / "last.pt", kind="training")
    assert all(torch.equal(last["model"][k], final[0][k]) for k in final[0])
    metrics = [json.loads((tmp_path / f"metrics{r}.json").read_text()) for r in range(2)]
    assert metrics[0] == metrics[1]
    model, config = load_model(tmp_path / "run" / "best.pt")
    assert config.positional_scale == "auto" and config.dropout == 0.1
    single = evaluate(model, load_splits(config, ("test",)).test, window=16)
    assert single.frame_map == pytest.approx(metrics[0]["frame_map"], abs=1e-6)


@pytest.mark.slow
def test_torchrun_command_line_prints_one_table(tmp_path):
    done = torchrun(["-m", "mladlib", "train", "--size", "tiny", "--hidden-dim", "8", "--num-layers", "1",
                     "--window", "16", "--batch-size", "4", "--epochs", "1", "--threads", "1", "--run-dir", "run"],
                    tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("tau = 20") == 1 and "batch 4 x 2 processes" in done.stdout
    assert (tmp_path / "run" / "results.json").is_file()


def test_shards_partition_the_videos_evenly():
    counts = np.array([5, 90, 40, 41, 7, 300, 12])
    for world in (1, 2, 3, 10):
        shards = [shard_indices(counts, r, world) for r in range(world)]
        flat = sorted(i for s in shards for i in s)
        assert flat == list(range(len(counts)))
        if world == 2:
            totals = [counts[s].sum() for s in shards]
            assert max(totals) <= counts.max() + min(totals)


def test_single_process_context_is_a_no_op():
    context, device = setup_distributed("cpu")
    assert context == DistributedContext() and device == torch.device("cpu")
    assert context.all_gather({"a": 1}) == [{"a": 1}] and context.gather_to_main(3) == [3]
    assert context.broadcast("x") == "x"
    tensor = torch.ones(2)
    assert context.all_reduce_sum(tensor) is tensor and torch.equal(tensor, torch.ones(2))
    with pytest.raises(ValueError, match="boom"):
        context.from_main(lambda: (_ for _ in ()).throw(ValueError("boom")))
    with pytest.raises(ValueError, match="CUDA is not available"):
        if not torch.cuda.is_available():
            setup_distributed("cuda")
        else:
            raise ValueError("CUDA is not available (skipped: CUDA present)")
    with pytest.raises(ValueError, match="unknown device"):
        setup_distributed("tpu9")


if __name__ == "__main__":  # a worker under torchrun
    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    os.environ.setdefault("MLADLIB_PROGRESS", "0")
    defaults = len(sys.argv) > 2 and sys.argv[2] == "defaults"
    trainer = Trainer((default_config if defaults else worker_config)(out / "run"))
    result = trainer.fit()
    rank = int(os.environ["RANK"])
    torch.save({"final": trainer.model.state_dict(), "best": result.model.state_dict()}, out / f"rank{rank}.pt")
    (out / f"metrics{rank}.json").write_text(json.dumps(result.test_metrics))
