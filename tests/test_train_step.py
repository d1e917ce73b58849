"""The trainer's parts alone: the build step, the train step, the stopping rule and the
checkpoint round trip (tests/test_train.py runs them together through Trainer)."""

from __future__ import annotations

import math

import pytest
import torch

from mladlib.train import load_checkpoint, make_config
from mladlib.train.distributed import DistributedContext
from mladlib.train.epoch import accumulation_group, backward_batch, optimizer_step
from mladlib.train.run_folder import RunFolder
from mladlib.train.run_parts import build_run_parts
from mladlib.train.run_state import RunCheckpoints, RunState
from mladlib.utils import preserved_global_state, seed_everything

CPU = torch.device("cpu")


def tiny_parts(**overrides):
    """A tiny run's parts on the CPU, seeded as the trainer seeds them."""
    settings = dict(synthetic_size="tiny", hidden_dim=16, num_layers=1, window=16,
                    batch_size=4, epochs=2, windows_per_epoch=48, num_threads=1)
    config = make_config("synthetic", **{**settings, **overrides})
    seed_everything(config.seed, num_threads=config.num_threads)
    return config, build_run_parts(config, DistributedContext(), CPU)


def gradients(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    named = model.named_parameters()
    return {n: p.grad.clone() for n, p in named if p.grad is not None}


def test_accumulation_groups_close_with_the_epoch():
    groups = [accumulation_group(i, 3, 7) for i in range(7)]
    assert [size for size, _ in groups] == [3, 3, 3, 3, 3, 3, 1]  # the last is short
    assert [i for i, (_, steps) in enumerate(groups) if steps] == [2, 5, 6]
    assert all(accumulation_group(i, 1, 5) == (1, True) for i in range(5))


def test_the_train_step_alone_accumulates_the_mean_gradient():
    """Two batches accumulated (each scaled by 1/2) hold the mean of their gradients;
    the optimizer step then moves the weights and clears them. (No dropout, and a fixed
    feature scale: the running one would move with every forward pass.)"""
    with preserved_global_state():
        config, parts = tiny_parts(dropout=0.0, positional_scale=1.0,
                                   grad_accumulation=2)
        assert parts.steps_per_epoch == math.ceil(len(parts.sampler) / 2)
        parts.sampler.set_epoch(0)
        first, second = [batch for _, batch in zip(range(2), parts.loader)]
        alone = []
        for batch in (first, second):
            parts.optimizer.zero_grad(set_to_none=True)
            loss = backward_batch(parts, batch, config, None, 1, steps_now=True)
            assert math.isfinite(loss.total.item())
            alone.append(gradients(parts.model))
        parts.optimizer.zero_grad(set_to_none=True)
        backward_batch(parts, first, config, None, group_size=2, steps_now=False)
        backward_batch(parts, second, config, None, group_size=2, steps_now=True)
        summed = gradients(parts.model)
        assert summed.keys() == alone[0].keys() and summed
        for name, grad in summed.items():
            torch.testing.assert_close(grad, (alone[0][name] + alone[1][name]) / 2)
        before = [p.detach().clone() for p in parts.model.parameters()]
        optimizer_step(parts, config)
        after = parts.model.parameters()
        assert any(not torch.equal(a, p) for a, p in zip(before, after))
        assert all(p.grad is None for p in parts.model.parameters())


def test_the_stopping_rule():
    state = RunState()
    model = torch.nn.Linear(2, 1)
    assert state.ended_by(epochs=5, patience=2) is None
    assert not state.record_validation(1, float("nan"), model)  # NaN is never a best
    assert state.record_validation(2, 0.3, model) and state.best_epoch == 2
    assert not state.record_validation(3, 0.3, model)  # a tie is no new best
    assert state.best_state.keys() == model.state_dict().keys()
    for epoch, value in ((1, float("nan")), (2, 0.3), (3, 0.3), (4, 0.2)):
        state.close_epoch({"epoch": epoch, "val_frame_map": value})
    assert state.validations_since_best == 2 and state.epoch == 4
    assert state.ended_by(epochs=5, patience=2) == "plateau"
    assert state.ended_by(epochs=5, patience=3) is None
    assert state.ended_by(epochs=4, patience=None) == "cap"


def test_last_pt_restores_what_it_saved(tmp_path):
    """A run's parts and state after some steps, saved to last.pt and restored into
    freshly built parts: the same weights, optimizer state and position."""
    with preserved_global_state():
        config, parts = tiny_parts(scheduler="cosine")
        state = RunState()
        parts.sampler.set_epoch(0)
        for _, batch in zip(range(3), parts.loader):
            loss = backward_batch(parts, batch, config, None, 1, steps_now=True)
            optimizer_step(parts, config)
            state.step += 1
            state.count_batch(loss.total.item(), 0.0, loss.final.item(), 4)
        folder = RunFolder(tmp_path / "run")
        folder.run_dir.mkdir()
        saved = RunCheckpoints(folder, DistributedContext(), config)
        saved.save_last(parts, state, elapsed=12.5)
        assert saved.last_saved.endswith("last.pt (epoch 0, step 3)")
        checkpoint = load_checkpoint(folder.path("last"), kind="training")
        _, fresh = tiny_parts(scheduler="cosine")
        restored = RunCheckpoints(folder, DistributedContext(), config).restore(
            checkpoint, fresh, log=print)
        where = (restored.step, restored.batch_in_epoch, restored.elapsed_before)
        assert where == (3, 3, 12.5)
        assert restored.epoch_stats == state.epoch_stats
        weights, trained = fresh.model.state_dict(), parts.model.state_dict()
        assert all(torch.equal(v, weights[k]) for k, v in trained.items())
        assert fresh.scheduler.state_dict() == parts.scheduler.state_dict()
        moments = fresh.optimizer.state_dict()["state"]
        assert moments.keys() == parts.optimizer.state_dict()["state"].keys()
        for index, saved_moments in parts.optimizer.state_dict()["state"].items():
            assert torch.equal(moments[index]["exp_avg"], saved_moments["exp_avg"])
        _, other = tiny_parts(scheduler="cosine", batch_size=2)
        with pytest.raises(ValueError, match="batches per epoch"):
            RunCheckpoints(folder, DistributedContext(), config).restore(
                checkpoint, other, log=print)
