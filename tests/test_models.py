"""The MLAD model family: shapes, size, masking, equivariance, training signal, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mladlib.models import (
    MLAD,
    MODEL_VARIANTS,
    ClassFeatures,
    FullAttentionBaseline,
    LinearBaseline,
    MLADLayer,
    PublicLayoutMLAD,
    build_model,
    count_parameters,
    load_official_checkpoint,
)
from mladlib.utils import seed_everything
from mladlib.train.scale_probe import fit_probe, frame_accuracy

B, T, C, F_DIM, H = 2, 12, 5, 16, 8


@pytest.fixture(autouse=True)
def _seed():
    seed_everything(0)


def small(name: str = "mlad", **kw):
    """A small ``name`` model in eval mode, from the sizes and options that variant takes."""
    opts = dict(hidden_dim=H, num_layers=2, dropout=0.0, attention_dropout=0.0)
    opts = {k: v for k, v in opts.items() if k in MODEL_VARIANTS[name].takes and k not in kw}
    return build_model(name, C, F_DIM, **opts, **kw).eval()


@pytest.mark.parametrize("name", sorted(MODEL_VARIANTS))
def test_every_variant_gives_logits_of_shape_btc(name):
    out = small(name)(torch.randn(B, T, F_DIM))
    assert out.logits.shape == (B, T, C)
    if out.initial_logits is not None:
        assert out.initial_logits.shape == (B, T, C)
    assert torch.isfinite(out.logits).all()


def test_variants_are_the_papers_ablations():
    assert len(small("cf").layers) == 0 and small("cf").initial_classifier is None
    assert small("cb").layers[0].branches == ("cb",)
    assert small("tb").layers[0].branches == ("tb",)
    assert float(small("mlad-fixed-alpha").layers[0].alpha) == 0.5
    assert small("mlad").layers[0].alpha_logit is not None
    assert small("linear")(torch.randn(1, 3, F_DIM)).initial_logits is None


def test_class_features_is_eq1_for_each_class():
    cf = ClassFeatures(C, F_DIM, H)
    x = torch.randn(B, T, F_DIM)
    f = cf(x)
    assert f.shape == (B, T, C, H)
    W = cf.weight.view(C, H, F_DIM)
    b = cf.bias.view(C, H)
    for c in range(C):  # the loop the GEMM replaces
        torch.testing.assert_close(f[:, :, c], F.relu(x @ W[c].T + b[c]))


def test_one_mlad_layer_has_about_200k_parameters_at_h128():
    n = count_parameters(MLADLayer(hidden_dim=128))
    assert 190_000 <= n <= 210_000, n
    assert count_parameters(MLADLayer(hidden_dim=128, branches=("cb",))) == pytest.approx(n / 2, abs=2)


def test_mlad_attention_maps_have_the_papers_shapes():
    out = small()(torch.randn(B, T, F_DIM), return_attention=True)
    assert len(out.attention) == 2
    cb, tb = out.attention[0]["cb"], out.attention[0]["tb"]
    assert cb.shape == (B, T, C, C) and tb.shape == (B, C, T, T)
    torch.testing.assert_close(cb.sum(-1), torch.ones(B, T, C))
    torch.testing.assert_close(tb.sum(-1), torch.ones(B, C, T))
    full = small("full")(torch.randn(B, T, F_DIM), return_attention=True).attention[0]["full"]
    assert full.shape == (B, T * C, T * C)


@pytest.mark.parametrize("name", ["mlad", "tb", "full"])
def test_attention_map_path_equals_fused_path(name):
    model = small(name)
    x = torch.randn(B, T, F_DIM)
    torch.testing.assert_close(model(x).logits, model(x, return_attention=True).logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["mlad", "tb", "cb", "full", "linear", "cf"])
def test_padding_does_not_change_valid_steps(name):
    model = small(name)
    x = torch.randn(1, T, F_DIM)
    pad = torch.randn(1, 5, F_DIM) * 10  # garbage in the padded steps
    padded = torch.cat([x, pad], dim=1)
    mask = torch.zeros(1, T + 5, dtype=torch.bool)
    mask[:, :T] = True
    alone = model(x)
    both = model(padded, mask=mask)
    torch.testing.assert_close(both.logits[:, :T], alone.logits, rtol=1e-5, atol=1e-5)
    if alone.initial_logits is not None:
        torch.testing.assert_close(both.initial_logits[:, :T], alone.initial_logits, rtol=1e-5, atol=1e-5)


def test_padded_batch_of_unequal_videos_equals_each_video_alone():
    model = small()
    a, b = torch.randn(1, T, F_DIM), torch.randn(1, T - 4, F_DIM)
    batch = torch.cat([a, F.pad(b, (0, 0, 0, 4))])
    mask = torch.ones(2, T, dtype=torch.bool)
    mask[1, T - 4:] = False
    out = model(batch, mask).logits
    torch.testing.assert_close(out[0], model(a).logits[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out[1, : T - 4], model(b).logits[0], rtol=1e-5, atol=1e-5)


def test_mlad_layer_is_permutation_equivariant_over_classes():
    layer = MLADLayer(hidden_dim=H, dropout=0.0, attention_dropout=0.0).eval()
    f = torch.randn(B, T, C, H)
    perm = torch.randperm(C)
    out, _ = layer(f)
    out_perm, _ = layer(f[:, :, perm])
    torch.testing.assert_close(out_perm, out[:, :, perm], rtol=1e-5, atol=1e-5)


def test_cb_only_output_at_a_step_depends_only_on_that_step():
    model = small("cb", positional_encoding=False)
    x = torch.randn(1, T, F_DIM)
    y = x.clone()
    y[:, 7] += torch.randn(F_DIM)
    changed = (model(x).logits - model(y).logits).abs().amax(dim=-1)[0]  # (T,)
    assert changed[7] > 1e-4
    assert torch.all(changed[torch.arange(T) != 7] == 0)


def test_tb_output_at_a_step_depends_on_other_steps():
    model = small("tb")
    x = torch.randn(1, T, F_DIM)
    y = x.clone()
    y[:, 7] += torch.randn(F_DIM)
    changed = (model(x).logits - model(y).logits).abs().amax(dim=-1)[0]
    assert changed[0] > 1e-6


def test_positional_encoding_lets_the_model_tell_order():
    with_pe, without = small("tb"), small("tb", positional_encoding=False)
    x = torch.randn(1, T, F_DIM)
    rev = x.flip(1)
    # without positions TB is equivariant to reversing time: outputs are the reversed outputs
    torch.testing.assert_close(without(rev).logits, without(x).logits.flip(1), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(with_pe(rev).logits, with_pe(x).logits.flip(1), atol=1e-4)


@pytest.mark.parametrize("name", sorted(MODEL_VARIANTS))
def test_gradient_reaches_every_parameter(name):
    model = small(name).train()
    out = model(torch.randn(B, T, F_DIM))
    loss = out.logits.square().mean() + (out.initial_logits.square().mean() if out.initial_logits is not None else 0)
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", ["mlad", "cf", "full"])
def test_overfits_a_tiny_fixed_batch(name):
    model = small(name).train()
    x = torch.randn(4, T, F_DIM)
    y = (torch.rand(4, T, C) < 0.3).float()
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)

    def loss_fn():
        out = model(x)
        loss = F.binary_cross_entropy_with_logits(out.logits, y)
        if out.initial_logits is not None:
            loss = loss + F.binary_cross_entropy_with_logits(out.initial_logits, y)
        return loss

    first = loss_fn().item()
    for _ in range(300):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    assert loss.item() < first / 10, (first, loss.item())


@pytest.mark.parametrize(
    "x, message",
    [
        (torch.randn(B, T, F_DIM + 1), rf"\(B, T, {F_DIM}\)"),
        (torch.randn(T, F_DIM), rf"\(B, T, {F_DIM}\)"),
        (torch.full((B, T, F_DIM), float("nan")), "NaN"),
        (torch.randn(B, 0, F_DIM), "T >= 1"),
    ],
)
def test_bad_input_raises_a_clear_value_error(x, message):
    with pytest.raises(ValueError, match=message):
        small()(x)


def test_bad_mask_and_options_raise():
    model = small()
    with pytest.raises(ValueError, match=r"bool mask of shape \(2, 12\)"):
        model(torch.randn(B, T, F_DIM), torch.ones(B, T))
    with pytest.raises(ValueError, match="at least one valid"):
        model(torch.randn(B, T, F_DIM), torch.zeros(B, T, dtype=torch.bool))
    with pytest.raises(ValueError, match="branches"):
        MLADLayer(hidden_dim=H, branches=("xb",))
    with pytest.raises(ValueError, match="alpha"):
        MLADLayer(hidden_dim=H, alpha=1.5)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("transformer", C, F_DIM)


def test_bf16_autocast_on_cpu():
    model = small()
    x = torch.randn(B, T, F_DIM)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert torch.isfinite(out.logits).all()
    torch.testing.assert_close(out.logits.float(), model(x).logits, rtol=0.05, atol=0.05)


@pytest.mark.slow
def test_torch_compile_gives_the_eager_outputs():
    model = small()
    x = torch.randn(B, T, F_DIM)
    compiled = torch.compile(model)
    torch.testing.assert_close(compiled(x).logits, model(x).logits, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bf16_matches_cpu_fp32():
    model = small()
    x = torch.randn(B, T, F_DIM)
    ref = model(x).logits
    gpu = model.cuda()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = gpu(x.cuda()).logits.float().cpu()
    torch.testing.assert_close(out, ref, rtol=0.05, atol=0.05)


def test_official_checkpoint_loads_into_an_equal_mlad(tmp_path):
    reference = PublicLayoutMLAD(C, F_DIM, hidden_dim=H, num_layers=3, max_len=T).eval()
    with torch.no_grad():
        reference.alpha.copy_(torch.randn(3))
    path = tmp_path / "mlad_release.pt"
    torch.save({"epoch": 7, "state_dict": reference.state_dict(), "optimizer": {}}, path)
    model = load_official_checkpoint(path)
    assert not model.training and len(model.layers) == 3 and model.hidden_dim == H
    x = torch.randn(B, T, F_DIM)
    final, initial = reference(x)
    out = model(x)
    torch.testing.assert_close(out.logits, final, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.initial_logits, initial, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="positional table holds"):
        model(torch.randn(1, T + 1, F_DIM))


def test_official_checkpoint_with_two_heads_and_module_prefix(tmp_path):
    reference = PublicLayoutMLAD(C, F_DIM, hidden_dim=H, num_layers=1, num_heads=2, ff_dim=12, max_len=T).eval()
    state = {f"module.{k}": v for k, v in reference.state_dict().items()}
    torch.save({"epoch": 1, "state_dict": state, "optimizer": {}}, tmp_path / "m.pt")
    model = load_official_checkpoint(tmp_path / "m.pt", num_heads=2)
    x = torch.randn(B, T, F_DIM)
    torch.testing.assert_close(model(x).logits, reference(x)[0], rtol=1e-5, atol=1e-5)


def test_checkpoint_that_would_run_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"x": Evil()}}, path)
    with pytest.raises(ValueError, match="weights-only"):
        load_official_checkpoint(path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        load_official_checkpoint(tmp_path / "junk.pt")


def test_wrong_layout_names_the_missing_key(tmp_path):
    reference = PublicLayoutMLAD(C, F_DIM, hidden_dim=H, num_layers=1, max_len=T)
    state = reference.state_dict()
    del state["encoder_layers2.0.linear1.weight"]
    torch.save({"state_dict": state}, tmp_path / "broken.pt")
    with pytest.raises(ValueError, match="encoder_layers2.0.linear1.weight"):
        load_official_checkpoint(tmp_path / "broken.pt")


def test_linear_and_full_baselines_are_what_they_claim():
    lin = LinearBaseline(C, F_DIM)
    assert count_parameters(lin) == F_DIM * C + C
    full = FullAttentionBaseline(C, F_DIM, hidden_dim=H, num_layers=1)
    assert count_parameters(full.layers[0]) == count_parameters(MLADLayer(hidden_dim=H, branches=("cb",)))


# ----------------------------------------------------------------- speed paths (issue 7)

from mladlib.models.dropout import LEVELS, dropout, keep_mask, quantized_drop_rate  # noqa: E402
from mladlib.models.flops import full_attention_train_flops, mlad_train_flops  # noqa: E402
from mladlib.models.fast import AttentionBlock  # noqa: E402  (the fast path's block)


def test_keep_mask_rate_is_exact_to_the_quantization():
    n = 1 << 20
    for p in (0.1, 0.5, 0.03):
        keep, scale = keep_mask((n,), p)
        drop = quantized_drop_rate(p)
        assert abs(drop - p) <= 0.5 / LEVELS
        assert scale == pytest.approx(1 / (1 - drop), rel=1e-12)
        sigma = (drop * (1 - drop) / n) ** 0.5
        assert abs((1 - keep.float().mean().item()) - drop) < 5 * sigma, p


def test_keep_mask_uses_all_16_bits_of_every_word():
    # int64 random_() alone leaves the sign bit 0: every fourth 16-bit word would be >= 0
    keep, _ = keep_mask((1 << 20,), 0.5)
    lanes = keep.view(-1, 4).float().mean(dim=0)  # the four 16-bit words of each 64-bit draw
    assert torch.all((lanes - 0.5).abs() < 0.01), lanes


def test_dropout_keeps_the_expectation_and_follows_the_seed():
    x = torch.ones(1 << 18)
    torch.manual_seed(3)
    y = dropout(x, 0.1)
    values = y.unique()
    assert len(values) == 2 and values[0] == 0 and values[1] == pytest.approx(1 / (1 - quantized_drop_rate(0.1)))
    assert y.mean().item() == pytest.approx(1.0, abs=5 * (0.1 / 0.9 / x.numel()) ** 0.5)
    torch.manual_seed(3)
    assert torch.equal(dropout(x, 0.1), y)
    assert not torch.equal(dropout(x, 0.1), y)
    assert dropout(x, 0.1, training=False) is x
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        keep_mask((4,), 1.0)


def test_float_keep_mask_is_the_bool_mask_as_numbers():
    torch.manual_seed(4)
    keep, scale = keep_mask((3, 1000), 0.2)
    for dtype in (torch.float32, torch.bfloat16):
        torch.manual_seed(4)
        numbers, same_scale = keep_mask((3, 1000), 0.2, dtype=dtype)
        assert numbers.dtype == dtype and same_scale == scale
        assert torch.equal(numbers, keep.to(dtype))


def test_training_block_equals_the_formula_with_the_same_masks():
    """The fast training path (bit masks, scales folded into weights) is the textbook block."""
    block = AttentionBlock(hidden_dim=H, dropout=0.2, attention_dropout=0.3, attention_out_relu=True).train()
    N, S = 6, 9
    x = torch.randn(N, S, H)
    key_valid = torch.rand(N, S) > 0.3
    key_valid[:, 0] = True
    torch.manual_seed(11)
    out, _ = block(x, key_valid)

    torch.manual_seed(11)  # the same masks, drawn in the same order
    q, k, v = F.linear(x, block.qkv.weight, block.qkv.bias).split(H, dim=-1)
    scores = (q @ k.transpose(1, 2) / H**0.5).masked_fill(~key_valid[:, None, :], float("-inf"))
    weights = scores.softmax(-1)

    def drop(t, p):
        keep, scale = keep_mask(t.shape, p)
        return t * keep * scale

    a = F.relu(block.out(drop(weights, 0.3) @ v))
    y = block.norm1(x + drop(a, 0.2))
    ff = block.linear2(drop(F.relu(block.linear1(y)), 0.2))
    expected = block.norm2(y + drop(ff, 0.2))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("out_relu", [True, False])
def test_training_block_gradients_equal_the_formulas(out_relu):
    """The merged projections (M_qk, M_vo) and the one-pass ReLU-dropout backward give the
    textbook block's gradients, parameter by parameter; b_k, which the softmax cancels,
    gets exactly zero."""
    block = AttentionBlock(hidden_dim=H, dropout=0.2, attention_dropout=0.3, attention_out_relu=out_relu).train()
    N, S = 5, 7
    x = torch.randn(N, S, H, requires_grad=True)
    key_valid = torch.rand(N, S) > 0.3
    key_valid[:, 0] = True
    target = torch.randn(N, S, H)

    def grads(out):
        params = [x] + list(block.parameters())
        return torch.autograd.grad((out * target).sum(), params)

    torch.manual_seed(12)
    fast = grads(block(x, key_valid)[0])

    torch.manual_seed(12)
    q, k, v = F.linear(x, block.qkv.weight, block.qkv.bias).split(H, dim=-1)
    scores = (q @ k.transpose(1, 2) / H**0.5).masked_fill(~key_valid[:, None, :], float("-inf"))

    def drop(t, p):
        keep, scale = keep_mask(t.shape, p)
        return t * keep * scale

    a = block.out(drop(scores.softmax(-1), 0.3) @ v)
    a = F.relu(a) if out_relu else a
    y = block.norm1(x + drop(a, 0.2))
    expected = grads(block.norm2(y + drop(block.linear2(drop(F.relu(block.linear1(y)), 0.2)), 0.2)))

    names = ["x"] + [name for name, _ in block.named_parameters()]
    for name, got, want in zip(names, fast, expected):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5, msg=name)
    qkv_bias_grad = fast[names.index("qkv.bias")]
    assert torch.equal(qkv_bias_grad[H:2 * H], torch.zeros(H))  # b_k: cancelled by the softmax


def test_seeded_training_steps_reproduce():
    def run():
        seed_everything(5)
        model = build_model("mlad", C, F_DIM, hidden_dim=H, num_layers=2).train()
        out = model(torch.randn(B, T, F_DIM))
        out.logits.sum().backward()
        return out.logits, model.layers[0].tb.qkv.weight.grad

    (a, ga), (b, gb) = run(), run()
    assert torch.equal(a, b) and torch.equal(ga, gb)


def test_mlad_layer_merges_with_eq6_weights():
    layer = MLADLayer(hidden_dim=H, dropout=0.0, attention_dropout=0.0).eval()
    with torch.no_grad():
        layer.alpha_logit.fill_(0.7)
    f = torch.randn(B, T, C, H)
    a = torch.sigmoid(torch.tensor(0.7))
    cb, _ = layer.cb(f.reshape(B * T, C, H))
    tb, _ = layer.tb(f.transpose(1, 2).reshape(B * C, T, H))
    expected = a * cb.view(B, T, C, H) + (1 - a) * tb.view(B, C, T, H).transpose(1, 2)
    torch.testing.assert_close(layer(f)[0], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["mlad", "full"])
def test_analytic_flops_match_torch_flop_counter(name):
    from torch.utils.flop_counter import FlopCounterMode

    # the fast path's explicit attention: every GEMM is an aten op
    model = small(name, attention_dropout=0.1, implementation="fast").train()
    with FlopCounterMode(display=False) as counter:
        out = model(torch.randn(B, T, F_DIM))
        (out.logits.sum() + out.initial_logits.sum()).backward()
    count = mlad_train_flops if name == "mlad" else full_attention_train_flops
    # the explicit one-head path runs merged projections (fewer GEMMs than the network's count)
    assert counter.get_total_flops() == count(B, T, C, F_DIM, H, 2, merged=True)
    assert count(B, T, C, F_DIM, H, 2, merged=True) < count(B, T, C, F_DIM, H, 2)
    assert mlad_train_flops(4, 128, 65, 2048, 128, 5) == 280_570_101_760  # the docstring's MultiTHUMOS figure


# ------------------------------------------------------------- strict options (issue 15)


def test_a_misspelt_option_is_an_error_naming_it():
    with pytest.raises(ValueError, match="hiden_dim"):
        build_model("mlad", C, F_DIM, hiden_dim=64)
    with pytest.raises(ValueError, match="positional_scale"):
        MLAD(C, F_DIM, positional_scale=0.0)
    with pytest.raises(ValueError, match="input_dropout"):
        MLAD(C, F_DIM, input_dropout=1.0)


# ------------------------------------------------------ input-scale robustness (issue 16 §3)


@pytest.mark.parametrize("scale", [0.01, 1.0, 100.0])
def test_auto_positional_scale_learns_at_every_feature_scale(scale):
    assert frame_accuracy(scale, "auto") > 0.8, scale


def test_positions_at_amplitude_one_drown_small_features():
    """The trap of issue 16 §3: positions of amplitude 1 beside features of scale 0.01."""
    trapped = frame_accuracy(0.01, 1.0)
    assert trapped < 0.65 and trapped < frame_accuracy(0.01, "auto") - 0.15, trapped


def test_the_scale_probe_leaves_the_random_streams_as_found():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    frame_accuracy(1.0, "auto", adam_steps=1)
    torch.testing.assert_close(torch.rand(3), expected)


def test_running_rms_is_a_buffer_that_follows_the_features_and_round_trips(tmp_path):
    model = MLAD(C, F_DIM, hidden_dim=H, num_layers=1, implementation="fast").train()
    pe = model.positional_encoding
    assert float(pe.amplitude()) == 1.0  # untrained: the public behaviour
    x = 0.05 * torch.randn(4, T, F_DIM)
    mask = torch.ones(4, T, dtype=torch.bool)
    mask[:, T // 2:] = False
    x[:, T // 2:] = 1000.0  # padded steps must not count
    model(x, mask)
    rms = x[:, : T // 2].square().mean().sqrt().item()
    assert float(pe.amplitude()) == pytest.approx(rms, rel=1e-4)
    torch.testing.assert_close(pe.eval()(x[:, :3]), x[:, :3] / rms + pe.table(3, x), rtol=1e-4, atol=1e-4)
    model.train()
    model.eval()
    before = float(pe.amplitude())
    model(torch.randn(2, T, F_DIM))
    assert float(pe.amplitude()) == before  # eval never updates it
    path = tmp_path / "m.pt"
    torch.save(model.state_dict(), path)
    again = MLAD(C, F_DIM, hidden_dim=H, num_layers=1)  # the reference path loads it too
    again.load_state_dict(torch.load(path, weights_only=True))
    again.eval()
    probe = 0.05 * torch.randn(2, T, F_DIM)
    torch.testing.assert_close(again(probe).logits, model(probe).logits, rtol=1e-5, atol=1e-5)
    assert float(again.positional_encoding.amplitude()) == before


def test_official_checkpoints_keep_amplitude_one(tmp_path):
    reference = PublicLayoutMLAD(C, F_DIM, hidden_dim=H, num_layers=1, max_len=T).eval()
    torch.save({"state_dict": reference.state_dict()}, tmp_path / "r.pt")
    model = load_official_checkpoint(tmp_path / "r.pt")
    assert model.positional_encoding.scale == 1.0
    x = 0.01 * torch.randn(B, T, F_DIM)  # small features: "auto" would change the function
    torch.testing.assert_close(model(x).logits, reference(x)[0], rtol=1e-5, atol=1e-5)


def test_positional_table_never_reallocates_and_serves_long_inputs():
    model = small("tb")
    pe = model.positional_encoding
    table = pe.pe
    long_x = torch.randn(1, 600, F_DIM)  # beyond the cached table
    model(long_x)
    assert pe.pe is table
    torch.testing.assert_close(pe.table(600, long_x)[:T], table[:T])


# ------------------------------------------- options and inputs (issue 26, issue 28)


def test_build_model_refuses_options_the_variant_fixes_or_does_not_take():
    with pytest.raises(ValueError, match=r"'cf' fixes num_layers=0"):
        build_model("cf", C, F_DIM, num_layers=3)
    with pytest.raises(ValueError, match=r"'mlad-fixed-alpha' fixes alpha=0.5"):
        build_model("mlad-fixed-alpha", C, F_DIM, alpha=0.3)
    with pytest.raises(ValueError, match=r"'linear' does not take option\(s\) \['hidden_dim', 'num_layers'\]"):
        build_model("linear", C, F_DIM, hidden_dim=64, num_layers=3)
    with pytest.raises(ValueError, match=r"'cb' does not take option\(s\) \['alpha'\]"):
        build_model("cb", C, F_DIM, alpha=0.3)
    with pytest.raises(ValueError, match=r"'full' does not take option\(s\) \['branches'\]"):
        build_model("full", C, F_DIM, branches=("cb",))


def test_a_model_holds_one_frozen_options_object():
    import dataclasses

    from mladlib.models import ModelOptions

    model = small("cf")
    assert isinstance(model.options, ModelOptions) and model.options.num_layers == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.options.hidden_dim = 3
    assert small("linear").options.positional_encoding is False  # the paper's I3D classifier
    assert MLAD(C, F_DIM, model.options, hidden_dim=4).options.hidden_dim == 4  # keywords override


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(num_heads=0), "num_heads must be an integer >= 1"),
        (dict(ff_dim=0), "ff_dim must be an integer >= 1"),
        (dict(hidden_dim=0), "hidden_dim must be an integer >= 1"),
        (dict(hidden_dim=8, num_heads=3), "not divisible by num_heads=3"),
        (dict(hidden_dim=8.5), "hidden_dim must be an integer"),
    ],
)
def test_impossible_sizes_are_refused_naming_the_option(options, message):
    with pytest.raises(ValueError, match=message):
        build_model("mlad", C, F_DIM, **options)


def test_features_of_another_dtype_or_type_are_refused_clearly():
    import numpy as np

    model = small()
    x = torch.randn(B, T, F_DIM)
    with pytest.raises(ValueError, match="expected torch.float32 features .* got torch.float16"):
        model(x.half())
    with pytest.raises(ValueError, match=r"got numpy.ndarray \(torch.from_numpy converts"):
        model(x.numpy())
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast casts for each GEMM
        assert model(x.bfloat16()).logits.shape == (B, T, C)
    half = small().half()  # a model converted as a whole takes features of its dtype
    assert half.options == model.options
    with pytest.raises(ValueError, match="expected torch.float16 features"):
        half(x)


# ---------------------------------------------- running feature scale per stream (issue 26)


def test_each_stream_keeps_its_own_running_rms():
    from mladlib.models import PositionalEncoding

    pe = PositionalEncoding(6, scale="auto", streams=(2, 4)).train()
    x = torch.cat([0.01 * torch.randn(3, 10, 2), 100 * torch.randn(3, 10, 4)], dim=-1)
    out = pe(x)
    expected = torch.stack([x[..., :2].square().mean(), x[..., 2:].square().mean()])
    torch.testing.assert_close(pe.feature_sq, expected)  # the first batch sets it
    rms = expected.sqrt()
    scaled = torch.cat([x[..., :2] / rms[0], x[..., 2:] / rms[1]], dim=-1)
    torch.testing.assert_close(out, scaled + pe.table(10, x))
    with pytest.raises(ValueError, match=r"feature_streams \(2, 3\) add up to 5"):
        PositionalEncoding(6, scale="auto", streams=(2, 3))
    with pytest.raises(ValueError, match="feature_streams"):
        MLAD(C, F_DIM, feature_streams=(0, F_DIM))


def _mixed_scale_accuracy(streams: tuple[int, ...] | None, adam_steps: int = 40) -> float:
    """Test frame accuracy of a one-layer MLAD trained on a planted task whose answer is in
    a faint stream (8 features of scale 0.01) joined to a loud, uninformative one (8 of
    scale 10): class c is on where faint feature c is positive. Chance: 0.5."""

    def task(videos: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        faint, loud = torch.randn(videos, 24, 8, generator=gen), torch.randn(videos, 24, 8, generator=gen)
        return torch.cat([0.01 * faint, 10.0 * loud], dim=-1), (faint[..., :C] > 0).float()

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = MLAD(C, 16, hidden_dim=8, num_layers=1, dropout=0.0, attention_dropout=0.0,
                     feature_streams=streams).train()
        x, y = task(48, 0)
        fit_probe(model, x, y, adam_steps)
        x_test, y_test = task(16, 1)
        with torch.no_grad():
            return ((model(x_test).logits > 0).float() == y_test).float().mean().item()


def test_one_model_learns_from_streams_of_mixed_scale():
    """One RMS for all 16 features is the loud stream's: the faint one stays 1000x below
    the positions and is drowned; one RMS per stream brings both to unit scale."""
    per_stream = _mixed_scale_accuracy((8, 8))
    one_rms = _mixed_scale_accuracy(None)
    # measured 0.80 and 0.51 (torch 2.x, CPU); chance is 0.5
    assert per_stream > 0.75 and one_rms < 0.6, (per_stream, one_rms)


# ------------------------------------------- checkpoints of earlier versions (issue 26)


def _save_with_config(path, config, model, edit, **extra):
    """A best checkpoint of ``model`` whose stored config dict ``edit`` rewrites, as an
    earlier mladlib wrote it."""
    from mladlib.train.checkpoint import save_checkpoint

    save_checkpoint(path, "best", config, model.state_dict(), epoch=1,
                    model_sizes={"num_classes": C, "feature_dim": F_DIM}, **extra)
    payload = torch.load(path, weights_only=True)
    edit(payload["config"])
    torch.save(payload, path)


@pytest.mark.parametrize("name", sorted(MODEL_VARIANTS))
def test_checkpoints_written_before_the_positional_options_reload_to_the_same_outputs(name, tmp_path):
    """Before ``positional_encoding`` and ``positional_scale`` existed, every class-feature
    model added positions at amplitude 1 and the linear baseline none."""
    from mladlib.train import make_config
    from mladlib.train.checkpoint import build_from_config, load_model

    config = make_config("synthetic", model=name, hidden_dim=H, num_layers=1, positional_scale=1.0,
                         positional_encoding=name != "linear")
    model = build_from_config(config, C, F_DIM).eval()

    def forget(values):
        del values["positional_encoding"], values["positional_scale"]

    _save_with_config(tmp_path / "old.pt", config, model, forget)
    again, loaded = load_model(tmp_path / "old.pt")
    assert loaded.positional_scale == 1.0 and loaded.positional_encoding == (name != "linear")
    x = 0.05 * torch.randn(B, T, F_DIM)  # small features: "auto" would compute another function
    with torch.no_grad():
        assert torch.equal(again(x).logits, model(x).logits)


def test_checkpoints_with_alpha_on_the_temporal_branch_load_as_its_complement(tmp_path):
    """``alpha_branch="tb"`` weighted the TB by ``sigmoid(l)``: today's CB weight is
    ``sigmoid(-l) = 1 - sigmoid(l)``, so the loader negates the logits (and Adam's first
    moment of a training checkpoint, which moves with them)."""
    from mladlib.train import make_config
    from mladlib.train.checkpoint import build_from_config, load_checkpoint, load_model

    config = make_config("synthetic", hidden_dim=H, num_layers=2)
    model = build_from_config(config, C, F_DIM).eval()
    with torch.no_grad():
        model.layers[0].alpha_logit.fill_(0.7)
        model.layers[1].alpha_logit.fill_(-1.3)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(B, T, F_DIM)).logits.sum().backward()
    optimizer.step()
    moments = {k: v["exp_avg"].clone() for k, v in optimizer.state_dict()["state"].items()}

    def tb(values):
        values["alpha_branch"] = "tb"

    _save_with_config(tmp_path / "tb.pt", config, model, tb, optimizer=optimizer.state_dict())
    again, _ = load_model(tmp_path / "tb.pt")
    for old, new in zip(model.layers, again.layers):
        assert torch.equal(new.alpha_logit, -old.alpha_logit)
        torch.testing.assert_close(new.alpha, 1 - old.alpha)
    names = [n for n, _ in model.named_parameters()]
    state = load_checkpoint(tmp_path / "tb.pt")["optimizer"]["state"]
    for index, moment in moments.items():
        sign = -1 if names[index].endswith("alpha_logit") else 1
        assert torch.equal(state[index]["exp_avg"], sign * moment), names[index]
