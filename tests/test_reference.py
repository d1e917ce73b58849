"""The fast path (mladlib.models.fast) computes the reference (mladlib.models.reference).

Every attention path of the fast block (fused SDPA, merged one-head projections, explicit
multi-head, fused multi-head) against the textbook code, in eval and in training with the
same dropout masks, with and without a padding mask: outputs, attention maps, the input's
and every parameter's gradient.

Same masks: the fast path draws each mask through :func:`mladlib.models.dropout.keep_mask`;
the test records them, then replays them, in the same order, through the reference's
``nn.Dropout`` modules (attention weights, attention output, feed-forward hidden,
feed-forward output; the input dropout first).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import mladlib.models.dropout as bit_dropout
from mladlib.models import MLAD, FullAttentionBaseline, build_model, set_implementation
from mladlib.models import fast, reference
from mladlib.utils import seed_everything

B, T, C, F_DIM, H = 2, 12, 5, 16, 8

#: name -> options selecting the fast block's attention path.
PATHS = {
    "fused": dict(num_heads=1, attention_dropout=0.0),
    "merged": dict(num_heads=1, attention_dropout=0.3),
    "explicit": dict(num_heads=2, attention_dropout=0.3, attention_out_relu=True, alpha_branch="tb"),
    "several heads": dict(num_heads=4, attention_dropout=0.0, attention_out_relu=True, alpha_branch="tb"),
}


class _Replay(nn.Dropout):
    """Applies the recorded masks, in order, instead of drawing new ones."""

    queue: list

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep, scale = self.queue.pop(0)
        assert keep.numel() == x.numel(), (tuple(keep.shape), tuple(x.shape))
        return x * keep.reshape(x.shape).to(x.dtype) * scale


def _pair(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """The model on the reference path and an identical copy on the fast path."""
    ref = set_implementation(model, "reference")
    return ref, set_implementation(copy.deepcopy(ref), "fast")


def _run(model, x, mask, training, need_weights, masks=None, record=None, monkeypatch=None):
    """Logits, initial logits, maps and the gradients of a fixed loss w.r.t. x and every parameter."""
    model.train(training)
    x = x.clone().requires_grad_(True)
    if record is not None:
        draw = bit_dropout.keep_mask

        def recording(*args, **kwargs):
            keep, scale = draw(*args, **kwargs)
            record.append((keep.clone(), scale))
            return keep, scale

        monkeypatch.setattr(bit_dropout, "keep_mask", recording)
    if masks is not None:
        for module in model.modules():
            if type(module) is nn.Dropout:
                module.__class__ = _Replay
                module.queue = masks
    out = model(x, mask, return_attention=need_weights)
    if record is not None:
        monkeypatch.setattr(bit_dropout, "keep_mask", draw)
    gen = torch.Generator().manual_seed(1)
    loss = (out.logits * torch.randn(out.logits.shape, generator=gen)).sum()
    if out.initial_logits is not None:
        loss = loss + (out.initial_logits * torch.randn(out.initial_logits.shape, generator=gen)).sum()
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(loss, [x, *params.values()])
    return out, dict(zip(["input", *params], grads))


def _padding() -> torch.Tensor:
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[1, T - 4:] = False
    return mask


def _compare(ref_out, ref_grads, fast_out, fast_grads, need_weights: bool) -> None:
    torch.testing.assert_close(fast_out.logits, ref_out.logits, rtol=1e-4, atol=1e-5)
    if ref_out.initial_logits is not None:
        torch.testing.assert_close(fast_out.initial_logits, ref_out.initial_logits, rtol=1e-4, atol=1e-5)
    if need_weights:
        assert len(fast_out.attention) == len(ref_out.attention) > 0
        for got, want in zip(fast_out.attention, ref_out.attention):
            assert got.keys() == want.keys()
            for key in want:
                torch.testing.assert_close(got[key], want[key], rtol=1e-5, atol=1e-6, msg=key)
    assert fast_grads.keys() == ref_grads.keys()
    for name, want in ref_grads.items():
        torch.testing.assert_close(fast_grads[name], want, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize("padded", [False, True], ids=["no mask", "padding mask"])
@pytest.mark.parametrize("training", [False, True], ids=["eval", "training"])
@pytest.mark.parametrize("path", sorted(PATHS))
def test_fast_path_equals_reference(path, training, padded, monkeypatch):
    seed_everything(0)
    options = dict(PATHS[path], dropout=0.2, input_dropout=0.1)
    ref, fast_model = _pair(MLAD(C, F_DIM, hidden_dim=H, num_layers=2, **options))
    assert ref.implementation == "reference" and fast_model.implementation == "fast"
    x = torch.randn(B, T, F_DIM)
    mask = _padding() if padded else None
    # in eval, the merged and explicit paths are the ones that return attention maps
    need_weights = not training and options["attention_dropout"] > 0

    masks: list = []
    fast_out, fast_grads = _run(fast_model, x, mask, training, need_weights, record=masks, monkeypatch=monkeypatch)
    if training:
        # input + 2 layers x 2 branches x (3 dropouts, + the attention weights' where it is on)
        per_block = 3 + (options["attention_dropout"] > 0)
        assert len(masks) == 1 + 2 * 2 * per_block
        assert any(not bool(keep.all()) for keep, _ in masks)  # dropout really dropped
    else:
        assert masks == []
    ref_out, ref_grads = _run(ref, x, mask, training, need_weights, masks=masks)
    assert masks == []  # the reference consumed every mask the fast path drew
    _compare(ref_out, ref_grads, fast_out, fast_grads, need_weights)


@pytest.mark.parametrize("name", ["cb", "tb", "full"])
def test_fast_path_equals_reference_for_one_branch_and_full_attention(name, monkeypatch):
    seed_everything(1)
    model = build_model(name, C, F_DIM, hidden_dim=H, num_layers=1, dropout=0.2, attention_dropout=0.3)
    ref, fast_model = _pair(model)
    x, mask = torch.randn(B, T, F_DIM), _padding()
    masks: list = []
    fast_out, fast_grads = _run(fast_model, x, mask, True, False, record=masks, monkeypatch=monkeypatch)
    ref_out, ref_grads = _run(ref, x, mask, True, False, masks=masks)
    assert masks == []
    _compare(ref_out, ref_grads, fast_out, fast_grads, False)


def test_the_switch_keeps_the_weights_and_the_state_dict_layout():
    model = MLAD(C, F_DIM, hidden_dim=H, num_layers=1)
    assert model.implementation == "reference"
    assert type(model.layers[0]) is reference.MLADLayer
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.implementation = "fast"
    assert type(model.layers[0]) is fast.MLADLayer and type(model.layers[0].cb) is fast.AttentionBlock
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    other = MLAD(C, F_DIM, hidden_dim=H, num_layers=1, implementation="fast")
    other.load_state_dict(state)  # a reference state dict loads into a fast model
    with pytest.raises(ValueError, match="implementation"):
        MLAD(C, F_DIM, implementation="quick")
    full = FullAttentionBaseline(C, F_DIM, hidden_dim=H, implementation="fast")
    assert type(full.layers[0]) is fast.AttentionBlock


def test_reference_attention_is_the_formula():
    q, k, v = torch.randn(3, 4, 6), torch.randn(3, 5, 6), torch.randn(3, 5, 2)
    valid = torch.tensor([True, True, False, True, False])
    context, weights = reference.attention(q, k, v, valid)
    scores = torch.einsum("nid,njd->nij", q, k) / 6**0.5
    scores[..., ~valid] = float("-inf")
    expected = torch.exp(scores) / torch.exp(scores).sum(-1, keepdim=True)
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(context, expected @ v)
    assert torch.all(weights[..., ~valid] == 0)
