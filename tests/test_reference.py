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

import pytest
import torch
from torch import nn

import mladlib.models.dropout as bit_dropout
from mladlib.models import MLAD, FullAttentionBaseline, build_model, with_implementation
from mladlib.models import fast, reference
from mladlib.utils import seed_everything

B, T, C, F_DIM, H = 2, 12, 5, 16, 8

#: name -> options selecting the fast block's attention path.
PATHS = {
    "fused": dict(num_heads=1, attention_dropout=0.0),
    "merged": dict(num_heads=1, attention_dropout=0.3),
    "explicit": dict(num_heads=2, attention_dropout=0.3, attention_out_relu=True),
    "several heads": dict(num_heads=4, attention_dropout=0.0, attention_out_relu=True),
}


def _replay(module: nn.Dropout, queue: list):
    """A forward for ``module`` that applies the recorded masks, in order, instead of
    drawing new ones."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        if not module.training or module.p == 0.0:
            return x
        keep, scale = queue.pop(0)
        assert keep.numel() == x.numel(), (tuple(keep.shape), tuple(x.shape))
        return x * keep.reshape(x.shape).to(x.dtype) * scale

    return forward


def _pair(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """The model (on the reference path) and the same network built on the fast path."""
    assert model.implementation == "reference"
    return model, with_implementation(model, "fast")


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
                module.forward = _replay(module, masks)
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


def test_the_path_is_chosen_at_construction_and_the_state_dict_fits_both():
    torch.manual_seed(0)
    model = MLAD(C, F_DIM, hidden_dim=H, num_layers=1)
    torch.manual_seed(0)
    built_fast = MLAD(C, F_DIM, hidden_dim=H, num_layers=1, implementation="fast")
    assert model.implementation == "reference" and built_fast.implementation == "fast"
    assert type(model.layers[0]) is reference.MLADLayer and type(model.layers[0].cb) is reference.AttentionBlock
    assert type(built_fast.layers[0]) is fast.MLADLayer and type(built_fast.layers[0].cb) is fast.AttentionBlock
    assert type(built_fast.input_dropout) is fast.Dropout and type(model.input_dropout) is nn.Dropout
    # the same seed draws the same weights on either path, under the same names
    state, fast_state = model.state_dict(), built_fast.state_dict()
    assert state.keys() == fast_state.keys()
    assert all(torch.equal(state[k], fast_state[k]) for k in state)
    with pytest.raises(AttributeError, match="with_implementation"):
        model.implementation = "fast"
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    copy = with_implementation(model.train(), "fast")  # leaves the random stream as found
    assert torch.equal(torch.rand(2), expected)
    assert copy.training and copy.implementation == "fast" and model.implementation == "reference"
    assert all(torch.equal(copy.state_dict()[k], v) for k, v in state.items())
    with pytest.raises(ValueError, match="implementation"):
        MLAD(C, F_DIM, implementation="quick")
    full = FullAttentionBaseline(C, F_DIM, hidden_dim=H, implementation="fast")
    assert type(full.layers[0]) is fast.AttentionBlock


def test_the_fast_classes_can_be_built_on_their_own():
    layer = fast.MLADLayer(hidden_dim=H, dropout=0.0, attention_dropout=0.0).eval()
    assert type(layer.cb) is fast.AttentionBlock and type(layer.tb) is fast.AttentionBlock
    ref = reference.MLADLayer(hidden_dim=H, dropout=0.0, attention_dropout=0.0).eval()
    ref.load_state_dict(layer.state_dict())
    f = torch.randn(B, T, C, H)
    torch.testing.assert_close(layer(f)[0], ref(f)[0], rtol=1e-5, atol=1e-5)
    block = fast.AttentionBlock(hidden_dim=H).eval()
    assert block(torch.randn(3, 4, H))[0].shape == (3, 4, H)


def test_no_module_class_is_rewritten():
    """The path is chosen when a model is built: nothing assigns ``__class__`` any more."""
    from pathlib import Path

    package = Path(reference.__file__).resolve().parents[1]
    offenders = [str(p) for p in package.rglob("*.py") if "__class__ =" in p.read_text()]
    assert offenders == []


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
