"""Measured cost of one attention model: time and memory of a forward (+ backward) pass.

The companion of :mod:`mladlib.models.flops` (analytic FLOPs): :func:`attention_cost`
builds MLAD (or a one-branch variant, or the supplement's CT x CT baseline) at a given
``C`` and ``T``, runs it on random features and reports

* ``time_ms``: median wall time of a forward (+ backward) pass after one warm-up pass;
* ``cpu_ms``: the least CPU time of the calling thread over the same passes (CPU only).
  With ``threads=1`` every kernel runs on that thread, and time spent waiting for a core
  is not counted, so on a shared machine it is the steadier measure of the work;
* ``peak_bytes``: the peak of live tensor memory during one pass, above what was live
  when it started (:func:`peak_tensor_bytes`: on CPU, the allocator's own allocation
  and free events recorded by ``torch.profiler``; on CUDA ``max_memory_allocated``);
* ``saved_bytes``: the bytes autograd keeps for the backward pass, counted by a
  ``saved_tensors_hooks`` pack hook (:func:`saved_tensor_bytes`); with L layers it grows
  L-fold, so it is the number to extrapolate from;
* ``flops``: the pass's analytic GEMM FLOPs (:mod:`mladlib.models.flops`);
* ``score_entries``: attention-score entries per layer over the batch
  (:func:`attention_score_entries`).

Speed and memory claims about the library belong in ``benchmarks/``; this module is the
measuring tool they, the book (chapter 3) and users share.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
from typing import Any, Callable, Iterator

import torch
from torch import Tensor

from .models.baselines import build_model
from .models.flops import full_attention_forward_flops, full_attention_train_flops, mlad_forward_flops, mlad_train_flops

#: The models :func:`attention_cost` measures: MLAD, its one-branch ablations, CT x CT attention.
COST_MODELS = ("mlad", "cb", "tb", "full")

#: ``fused``: ``scaled_dot_product_attention`` picks its fused kernel (the score matrix is
#: never stored); ``math``: SDPA's explicit fallback, ``softmax(Q K^T / sqrt(H)) V`` with
#: the ``(S, S)`` weights in memory, as attention was computed in 2021.
KERNELS = ("fused", "math")

_BRANCHES = {"mlad": ("cb", "tb"), "cb": ("cb",), "tb": ("tb",)}


def attention_score_entries(model_name: str, C: int, T: int, B: int = 1) -> int:
    """Entries of the attention matrices of one layer over a batch of ``B`` windows.

    MLAD: ``T`` matrices ``C x C`` (eq. 2) and ``C`` matrices ``T x T`` (eq. 4) per window;
    CT x CT baseline: one ``(C T) x (C T)`` matrix per window.
    """
    _check_model(model_name)
    _check_positive(C=C, T=T, B=B)
    if model_name == "full":
        return B * (C * T) ** 2
    branches = _BRANCHES[model_name]
    return B * (T * C * C * ("cb" in branches) + C * T * T * ("tb" in branches))


def attention_cost(
    model_name: str,
    C: int,
    T: int,
    H: int = 32,
    B: int = 2,
    F: int = 32,
    L: int = 1,
    *,
    backward: bool = True,
    kernel: str = "fused",
    attention_dropout: float = 0.0,
    repeats: int = 3,
    seed: int = 0,
    threads: int | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Measure one forward (+ backward) pass of ``model_name`` on ``(B, T, F)`` features.

    The model has ``L`` layers of width ``H`` over ``C`` classes, dropout 0 except
    ``attention_dropout`` (on eager CPU a positive value makes :class:`AttentionBlock`
    compute the weights explicitly, whatever ``kernel``). ``backward=True`` adds the
    backward pass of ``logits.sum()``; without it the forward runs under ``no_grad``, as
    at inference. ``threads`` sets torch's intra-op thread count for the measurement
    (restored after); None keeps the current one. Returns ``time_ms``
    (median wall time of ``repeats`` passes after a warm-up pass), ``cpu_ms`` (least
    thread CPU time; NaN on CUDA), ``peak_bytes``, ``saved_bytes`` (0 without backward),
    ``flops`` and ``score_entries``; see the module docstring for each.
    """
    _check_model(model_name)
    _check_positive(C=C, T=T, H=H, B=B, F=F, L=L, repeats=repeats)
    if threads is not None:
        _check_positive(threads=threads)
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    if not 0.0 <= attention_dropout < 1.0:
        raise ValueError(f"attention_dropout must be in [0, 1), got {attention_dropout}")
    device = torch.device(device)
    # seeded weights, inputs and dropout masks, without touching the caller's random streams
    forked = [torch.cuda.current_device() if device.index is None else device.index] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked), _num_threads(threads):
        torch.manual_seed(seed)
        model = _build(model_name, C, F, H, L, attention_dropout).to(device).train()
        x = torch.randn(B, T, F).to(device)

        def one_pass() -> None:
            with _kernel(kernel), torch.set_grad_enabled(backward):
                logits = model(x).logits  # (B, T, C)
                if backward:
                    logits.sum().backward()
            for p in model.parameters():
                p.grad = None

        one_pass()  # warm-up: allocator, kernel choice, lazily grown position table
        wall, cpu = [], []
        for _ in range(repeats):
            _sync(device)
            start_wall, start_cpu = time.perf_counter(), time.thread_time()
            one_pass()
            _sync(device)
            wall.append(time.perf_counter() - start_wall)
            cpu.append(time.thread_time() - start_cpu)
        peak = peak_tensor_bytes(one_pass, device)
        saved = 0
        if backward:
            with _kernel(kernel):
                saved = saved_tensor_bytes(lambda: model(x).logits)
    return {
        "time_ms": statistics.median(wall) * 1e3,
        "cpu_ms": min(cpu) * 1e3 if device.type == "cpu" else float("nan"),
        "peak_bytes": peak,
        "saved_bytes": saved,
        "flops": _flops(model_name, B, T, C, F, H, L, backward),
        "score_entries": attention_score_entries(model_name, C, T, B),
    }


def peak_tensor_bytes(fn: Callable[[], Any], device: str | torch.device = "cpu") -> int:
    """Peak of live tensor bytes while ``fn()`` runs, above those live when it starts.

    CPU: ``torch.profiler`` with ``profile_memory=True`` records every allocation and free
    of the CPU allocator (size and time); their running sum, in time order, is the live
    memory, and its maximum the peak. Exact for tensor memory, blind to memory outside
    torch's allocator (Python objects, the interpreter). CUDA: the caching allocator's
    ``max_memory_allocated`` over the call.
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - base)
    if device.type != "cpu":
        raise ValueError(f"peak memory is measured on cpu or cuda, not {device.type!r}")
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [e for e in prof.profiler.kineto_results.events()
              if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU]
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()  # negative for a free
        peak = max(peak, live)
    return int(peak)


def saved_tensor_bytes(forward: Callable[[], Tensor]) -> int:
    """Bytes of the distinct storages autograd saves for the backward of ``forward()``.

    A ``saved_tensors_hooks`` pack hook sees every tensor an operation keeps for its
    backward; storages are counted once (views and tensors saved by several operations
    share one), and leaf tensors that require grad (the parameters, which exist anyway)
    are left out. The result is the activation memory a training step holds between
    forward and backward: it grows with every layer, unlike a transient buffer.
    """
    seen: dict[tuple[torch.device, int], int] = {}

    def pack(t: Tensor) -> Tensor:
        if not (t.is_leaf and t.requires_grad):
            storage = t.untyped_storage()
            seen[(t.device, storage.data_ptr())] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = forward()
    del out  # frees the graph and what it saved
    return int(sum(seen.values()))


def loglog_slope(sizes: Any, values: Any) -> float:
    """Least-squares slope of ``log(values)`` against ``log(sizes)``: the exponent ``k``
    of a power law ``value ~ size^k`` (1 linear, 2 quadratic)."""
    x = torch.as_tensor(sizes, dtype=torch.float64).log()
    y = torch.as_tensor(values, dtype=torch.float64).log()
    if x.ndim != 1 or x.shape != y.shape or len(x) < 2:
        raise ValueError(f"need two 1-D sequences of equal length >= 2, got {tuple(x.shape)} and {tuple(y.shape)}")
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise ValueError("sizes and values must be positive and finite for a log-log fit")
    x = x - x.mean()
    if float((x * x).sum()) == 0.0:
        raise ValueError("sizes must not all be equal")
    return float((x * (y - y.mean())).sum() / (x * x).sum())


# ------------------------------------------------------------------------- helpers

def _check_model(model_name: str) -> None:
    if model_name not in COST_MODELS:
        raise ValueError(f"model_name must be one of {COST_MODELS}, got {model_name!r}")


def _check_positive(**sizes: int) -> None:
    for name, value in sizes.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _build(model_name: str, C: int, F: int, H: int, L: int, attention_dropout: float) -> torch.nn.Module:
    # the fast path: its explicit CPU attention is what attention_dropout > 0 measures
    return build_model(model_name, C, F, hidden_dim=H, num_layers=L, dropout=0.0, attention_dropout=attention_dropout,
                       implementation="fast")


def _flops(model_name: str, B: int, T: int, C: int, F: int, H: int, L: int, backward: bool) -> int:
    if model_name == "full":
        return (full_attention_train_flops if backward else full_attention_forward_flops)(B, T, C, F, H, L)
    count = mlad_train_flops if backward else mlad_forward_flops
    return count(B, T, C, F, H, L, branches=_BRANCHES[model_name])


@contextlib.contextmanager
def _kernel(kernel: str) -> Iterator[None]:
    if kernel == "math":
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel(SDPBackend.MATH):
            yield
    else:
        yield


@contextlib.contextmanager
def _num_threads(threads: int | None) -> Iterator[None]:
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 for the block: the profiler's C++ layer logs a line at
    each start and stop, which would land in notebooks and logs. Python exceptions still
    propagate; only the process's raw stderr output of the block is dropped."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 (some embedded interpreters): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)
