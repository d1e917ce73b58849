"""Training-step speed and memory of MLAD, against the public code's layout, in one run.

One training step = forward on ``(B, T, F)`` random features, binary cross-entropy on the
final and the initial logits (as the paper trains), backward, Adam step (lr 1e-4). Rows:

* ``MLAD``: :class:`mladlib.models.MLAD` with the public release's options
  (``attention_out_relu=True``) and its dropout, 0.1 everywhere,
  attention weights included; fp32 and, where the hardware has bf16 units, bf16 autocast;
* ``naive``: :class:`mladlib.models.PublicLayoutMLAD`, the same network (same parameter
  count, printed) written as the public code writes it: one ``nn.Linear`` per class in a
  Python loop, hand-written softmax attention per branch; always fp32, eager;
* ``CT x CT``: the supplement's full-attention baseline, with the attention computed
  explicitly (``math``: ``(CT)^2`` weights in memory) and by fused kernels (``fused``).

``GFLOP`` is the step's analytic matmul count (:mod:`mladlib.models.flops`); ``GFLOP run``
is what the row's code path really multiplies (smaller where the one-head explicit attention
merges its Q/K and V/output projections into two ``H x H`` maps: MLAD and CT x CT rows on
CPU with attention dropout). ``%fp32 GEMM`` divides the analytic count per second by the
rate of a large square fp32 matmul measured in the same process (4096^3 on CPU, 8192^3 on
CUDA), bf16 rows included (the bf16 matmul rate is printed above the table). Times are
medians of ``--repeats`` steps after a warm-up step.

CPU: the rows of one data set and batch size are timed in one process, round-robin (one
step of each, then the matmul, repeated), so a machine shared with other jobs weighs on
all of them alike; the table also gives process CPU time, which with ``--threads 1`` is
nearly immune to other jobs. Peak memory: each row runs again alone in a fresh subprocess
(warm-up and one step), which reports its peak resident set size (``VmHWM``) minus the
resident set just before the model was built: parameters, gradients, Adam state,
activations and the libraries' lazily made buffers. CUDA: rows run one after another;
peak memory is ``torch.cuda.max_memory_allocated`` minus the allocation before the model
was built. The script also searches the largest T at which one step fits (doubling, then
bisection, each trial one step of at most ``--max-trial-s``) for MLAD and the CT x CT
baseline, with and without fused attention.

    python benchmarks/bench_model.py                  # CPU: paper sizes, B in {1, 4}
    python benchmarks/bench_model.py --threads 1      # steadier on a shared machine
    python benchmarks/bench_model.py --quick          # tiny sizes, a smoke test
    python benchmarks/bench_model.py --device cuda --compile --time-budget-s 330

Prints one table (progress goes to stderr); ``--out FILE`` also writes it as a JSON
record (``benchmarks/records.py``). Exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mladlib.models import MLAD, FullAttentionBaseline, PublicLayoutMLAD, count_parameters  # noqa: E402
from mladlib.models.fast import explicit_attention  # noqa: E402
from mladlib.models.flops import full_attention_train_flops, mlad_train_flops  # noqa: E402
from mladlib.utils import cpu_name, freed_memory_kept, keep_freed_memory, seed_everything  # noqa: E402

#: The paper's two configurations (section 4): F = 2048 I3D features, H = 128, L = 5.
PAPER = {"MultiTHUMOS": dict(C=65, T=128), "Charades": dict(C=157, T=64)}
FEATURES, HIDDEN, LAYERS = 2048, 128, 5


@dataclass(frozen=True)
class Case:
    """One row of the table: a model at one size, precision and attention kernel."""

    model: str  # "mlad" | "naive" | "full"
    data: str  # a PAPER key, or "quick"
    B: int
    T: int
    C: int
    F: int = FEATURES
    H: int = HIDDEN
    L: int = LAYERS
    dtype: str = "fp32"  # autocast dtype: "fp32" (none) | "bf16"
    attention: str = "fused"  # "fused": let SDPA pick its kernels | "math": explicit weights
    attention_dropout: float = 0.1
    optimizer: str = "fused"  # Adam's implementation: "fused" (one kernel) | "default" (torch's default)
    compile: bool = False
    device: str = "cpu"
    repeats: int = 3
    note: str = ""
    implementation: str = "fast"  # MLAD's code path: "reference" (textbook) | "fast" (CPU tricks)


@dataclass
class Result:
    case: Case
    times_s: list[float] = field(default_factory=list)  # wall clock
    peak_mib: float = float("nan")
    gemm_gflops: float = float("nan")
    params: int = 0
    error: str = ""
    cpu_times_s: list[float] = field(default_factory=list)  # process CPU time (CPU runs)
    gemm_cpu_gflops: float = float("nan")  # fp32, per CPU second
    gemm_bf16_gflops: float = float("nan")  # for reference, on bf16 rows

    @property
    def step_s(self) -> float:
        return statistics.median(self.times_s) if self.times_s else float("nan")

    @property
    def step_cpu_s(self) -> float:
        return statistics.median(self.cpu_times_s) if self.cpu_times_s else float("nan")

    @property
    def flops(self) -> float:
        """The network's analytic GEMM FLOPs per step (the %fp32 GEMM numerator)."""
        return self._flops(merged=False)

    @property
    def executed_flops(self) -> float:
        """The GEMM FLOPs the row's code path runs: merged projections on the explicit
        one-head attention path (eager CPU training with attention dropout)."""
        c = self.case
        # the fast block's own rule, for a training step (no weights asked) on this device
        probe = torch.empty(0, device=c.device)
        explicit = explicit_attention(probe, c.attention_dropout, True, False)
        fast = c.model != "naive" and c.implementation == "fast" and not c.compile
        merged = fast and explicit
        return self._flops(merged)

    def _flops(self, merged: bool) -> float:
        c = self.case
        if c.model == "full":
            return full_attention_train_flops(c.B, c.T, c.C, c.F, c.H, c.L, merged=merged)
        return mlad_train_flops(c.B, c.T, c.C, c.F, c.H, c.L, merged=merged)


# ---------------------------------------------------------------- one case, in this process

def build_model(case: Case) -> torch.nn.Module:
    if case.model == "naive":  # its attention dropout is tied to the dropout, 0.1
        return PublicLayoutMLAD(case.C, case.F, case.H, case.L, max_len=case.T)
    if case.model == "full":
        return FullAttentionBaseline(case.C, case.F, hidden_dim=case.H, num_layers=case.L,
                                     attention_dropout=case.attention_dropout, implementation=case.implementation)
    return MLAD(case.C, case.F, hidden_dim=case.H, num_layers=case.L, attention_dropout=case.attention_dropout,
                attention_out_relu=True, implementation=case.implementation)


def make_step(case: Case, model: torch.nn.Module):
    """A closure running one training step of ``model`` on fixed random data."""
    device = torch.device(case.device)
    x = torch.randn(case.B, case.T, case.F, device=device)
    # sparse multi-label targets
    y = (torch.rand(case.B, case.T, case.C, device=device) < 0.05).float()
    # the paper's optimizer and rate; the fused kernel does the update in one pass,
    # for every row alike (on CPU about 20 ms instead of 110 ms for MLAD's 18M params)
    fused = True if case.optimizer == "fused" else None
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, fused=fused)
    forward = torch.compile(model) if case.compile else model

    def contexts() -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        if case.dtype == "bf16":
            stack.enter_context(torch.autocast(device.type, dtype=torch.bfloat16))
        if case.attention == "math":
            # SDPA's explicit fallback: (S, S) weights in memory
            from torch.nn.attention import SDPBackend, sdpa_kernel
            stack.enter_context(sdpa_kernel(SDPBackend.MATH))
        return stack

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with contexts():
            out = forward(x)
            final, initial = (out[0], out[1])  # ModelOutput and the naive tuple alike
            loss = F.binary_cross_entropy_with_logits(final.float(), y)
            loss = loss + F.binary_cross_entropy_with_logits(initial.float(), y)
        loss.backward()
        optimizer.step()

    return step


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def gemm_throughput(device: str, dtype: str, repeats: int = 3) -> tuple[float, float]:
    """GFLOP/s of a large square matmul, per wall-clock and per process-CPU second: the
    machine's yardstick for a matmul-bound step."""
    n = 8192 if device == "cuda" else 4096
    torch_dtype = torch.bfloat16 if dtype == "bf16" else torch.float32
    a = torch.randn(n, n, device=device, dtype=torch_dtype)
    b = torch.randn(n, n, device=device, dtype=torch_dtype)
    (a @ b).sum().item()
    wall, cpu = [], []
    for _ in range(repeats):
        sync(device)
        start, start_cpu = time.perf_counter(), time.process_time()
        a @ b
        sync(device)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    flop = 2 * n**3 / 1e9
    return flop / min(wall), (flop / min(cpu) if device == "cpu" else float("nan"))


def max_rss_mib() -> float:
    """This process's peak resident set size. ``VmHWM`` where Linux has it: ``getrusage``'s
    ``ru_maxrss`` survives ``exec``, so a child would inherit its parent's peak."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_case(case: Case, seed: int = 0, gemm: bool = True, warmup: bool = True) -> Result:
    """Time ``case.repeats`` steps after one warm-up step; measure peak memory and, if
    ``gemm``, the large-GEMM rate (after the steps, so it does not raise their peak)."""
    seed_everything(seed, deterministic=False)
    result = Result(case)
    cuda = case.device == "cuda"
    if cuda:
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = max_rss_mib()
    try:
        model = build_model(case).to(case.device).train()
        result.params = count_parameters(model)
        step = make_step(case, model)
        if warmup:
            step()  # allocator, kernel selection, compilation
        for _ in range(case.repeats):
            sync(case.device)
            start = time.perf_counter()
            step()
            sync(case.device)
            result.times_s.append(time.perf_counter() - start)
        if cuda:
            result.peak_mib = (torch.cuda.max_memory_allocated() - base) / 2**20
        else:
            result.peak_mib = max_rss_mib() - base
    except torch.OutOfMemoryError:
        result.error = "out of memory"
    except RuntimeError as error:  # e.g. a kernel's launch limits at a huge size: report, go on
        result.error = f"failed: {str(error).strip().splitlines()[0][:80]}"
    finally:
        model = step = None  # noqa: F841 (release before the GEMM measurement)
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    if gemm:
        result.gemm_gflops, result.gemm_cpu_gflops = gemm_throughput(case.device, "fp32")
        if case.dtype == "bf16":
            result.gemm_bf16_gflops, _ = gemm_throughput(case.device, "bf16")
    return result


def peak_memory_in_subprocess(case: Case, seed: int) -> Result:
    """Warm-up and one step of ``case`` in a fresh interpreter, so its max RSS is its own."""
    case = replace(case, repeats=1)
    command = [sys.executable, __file__, "--child", json.dumps(asdict(case)), "--seed", str(seed),
               "--threads", str(torch.get_num_threads())]
    if not freed_memory_kept():  # the parent left malloc's defaults: so does the child
        command.append("--keep-malloc-defaults")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return Result(case, error=f"subprocess failed: {done.stderr.strip().splitlines()[-1:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return Result(case, data["times_s"], data["peak_mib"], data["gemm_gflops"], data["params"], data["error"])


def time_interleaved(cases: list[Case], seed: int) -> list[Result]:
    """Time ``cases`` (same data and batch) in this process, round-robin: one step of each,
    then a large GEMM per dtype, ``repeats`` times. On a machine shared with other jobs
    the load then weighs on every row alike, so their ratios stay meaningful."""
    seed_everything(seed, deterministic=False)
    results = [Result(case) for case in cases]
    steps = []
    for result in results:
        model = build_model(result.case).train()
        result.params = count_parameters(model)
        steps.append(make_step(result.case, model))
        steps[-1]()  # warm-up
    gemm: dict[str, list[tuple[float, float]]] = {}
    for _ in range(max(case.repeats for case in cases)):
        for result, step in zip(results, steps):
            start, start_cpu = time.perf_counter(), time.process_time()
            step()
            result.times_s.append(time.perf_counter() - start)
            result.cpu_times_s.append(time.process_time() - start_cpu)
        for dtype in sorted({"fp32"} | {case.dtype for case in cases}):
            gemm.setdefault(dtype, []).append(gemm_throughput("cpu", dtype, repeats=1))
    for result in results:
        result.gemm_gflops = statistics.median(wall for wall, _ in gemm["fp32"])
        result.gemm_cpu_gflops = statistics.median(cpu for _, cpu in gemm["fp32"])
        if result.case.dtype == "bf16":
            result.gemm_bf16_gflops = statistics.median(wall for wall, _ in gemm["bf16"])
    return results


def run_on_cpu(cases: list[Case], seed: int) -> list[Result]:
    """Every case's time (interleaved with the others of its data and batch size) and its
    peak memory (alone, in a subprocess)."""
    groups: dict[tuple, list[Case]] = {}
    for case in cases:
        groups.setdefault((case.data, case.B, case.T, case.compile), []).append(case)
    results = []
    for group in groups.values():
        timed = time_interleaved(group, seed)
        for result in timed:
            memory = peak_memory_in_subprocess(result.case, seed)
            result.peak_mib, result.error = memory.peak_mib, memory.error
            results.append(result)
            print(f"#   {result.case.model} {result.case.data} B={result.case.B} {result.case.dtype} "
                  f"{result.case.attention}: {result.step_s * 1e3:.0f} ms, {result.peak_mib:.0f} MiB {result.error}",
                  file=sys.stderr, flush=True)
    return results


# ------------------------------------------------------------------ largest T (CUDA)

def largest_T(case: Case, start: int, limit: int, max_trial_s: float, seed: int) -> tuple[Result | None, str]:
    """The largest T (a multiple of ``start``, at most ``limit``) at which one training
    step of ``case`` fits in memory and takes at most ``max_trial_s``: doubling, then
    bisection to within 12.5%. Returns that T's result and what stopped the search."""
    def trial(T: int) -> tuple[Result, str]:
        result = run_case(replace(case, T=T, repeats=1), seed, gemm=False, warmup=False)
        if result.error:
            return result, f"{result.error} at T={T}"
        if result.step_s > max_trial_s:
            return result, f"step over {max_trial_s:g} s at T={T}"
        return result, ""

    best, stop = None, f"reached the search limit T={limit}"
    T = start
    while T <= limit:
        result, why = trial(T)
        if why:
            stop = why
            break
        best, T = result, 2 * T
    else:
        return best, stop
    low, high = (best.case.T if best else 0), T
    while high - low > max(start, low // 8):
        mid = (low + high) // 2 // start * start
        result, why = trial(mid)
        if why:
            high, stop = mid, why
        else:
            low, best = mid, result
    return best, stop


# ------------------------------------------------------------------------------ table

def bf16_supported(device: str) -> bool:
    if device == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def machine(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    return f"{cpu_name()}, {os.cpu_count()} cores"


def plan(args: argparse.Namespace) -> tuple[list[Case], list[tuple[Case, int, int]]]:
    """The rows to time, and the largest-T searches (case, start T, limit)."""
    device = args.device
    bf16 = bf16_supported(device) and args.dtype in ("bf16", "both")
    fp32 = args.dtype in ("fp32", "both")
    repeats = args.repeats or (5 if device == "cuda" else 3)
    if args.quick:
        configs = {"quick": dict(C=21, T=32)}
        base = dict(F=256, H=32, L=2)
        batches = args.batch_sizes or [2]
    else:
        configs = {name: PAPER[name] for name in args.data}
        base = dict()
        batches = args.batch_sizes or ([1, 8, 32] if device == "cuda" else [1, 4])
    cases: list[Case] = []
    for data, size in configs.items():
        for B in batches:
            common = dict(data=data, B=B, device=device, repeats=repeats, optimizer=args.optimizer, **size, **base)
            cases.append(Case("naive", **common))
            for implementation in ("reference", "fast"):  # side by side, same layout as the public code
                if fp32:
                    cases.append(Case("mlad", implementation=implementation, **common))
                if bf16:
                    cases.append(Case("mlad", dtype="bf16", implementation=implementation, **common))
            if device == "cuda" and bf16:  # once: the explicit-weights kernel beside the fused one
                cases.append(Case("mlad", dtype="bf16", attention="math", **common))
            if args.compile and (device == "cpu" or (B == max(batches) and data == next(iter(configs)))):
                for implementation in ("reference", "fast"):
                    cases.append(Case("mlad", dtype="bf16" if bf16 else "fp32", compile=True,
                                      implementation=implementation, **common))
    # the CT x CT baseline, one layer, first configuration: explicit vs fused attention
    data, size = next(iter(configs.items()))
    full = dict(data=data, B=1, device=device, repeats=repeats, optimizer=args.optimizer, **{**size, **base, "L": 1})
    searches: list[tuple[Case, int, int]] = []
    if device == "cpu":
        cases.append(Case("full", attention="math", **full))
        # CPU has no fused kernel with dropout: the fused row is without attention dropout
        cases.append(Case("full", attention="fused", attention_dropout=0.0, note="attention dropout off", **full))
    else:
        dtype = "bf16" if bf16 else "fp32"
        for attention in ("math", "fused"):
            cases.append(Case("full", dtype=dtype, attention=attention, **full))
        if not args.quick:
            search = dict(data=data, B=args.search_batch, device=device, dtype=dtype, repeats=1,
                          optimizer=args.optimizer, C=size["C"], T=size["T"])
            for attention in ("math", "fused"):
                searches.append((Case("full", attention=attention, L=1, **search), 64, 1 << 15))
                searches.append((Case("mlad", attention=attention, **search), 256, 1 << 17))
    return cases, searches


HEADER = ["model", "data", "B", "T", "dtype", "attention", "ms/step", "ms/window", "windows/s", "GFLOP",
          "GFLOP run", "%fp32 GEMM", "peak MiB", "vs naive", "CPU ms/step", "%fp32 GEMM (CPU)", "vs naive (CPU)", "note"]


#: The record's columns: (label of HEADER, cell template over the record row's fields).
COLUMNS = [
    ("model", "{model}"), ("data", "{data}"), ("B", "{B}"), ("T", "{T}"),
    ("dtype", "{dtype}"), ("attention", "{attention}"),
    ("ms/step", "{ms_per_step:.0f}"),
    ("ms/window", "{ms_per_window:.1f}"), ("windows/s", "{windows_per_s:.2f}"),
    ("GFLOP", "{gflop:.1f}"), ("GFLOP run", "{gflop_run:.1f}"),
    ("%fp32 GEMM", "{pct_fp32_gemm:.0f}%"), ("peak MiB", "{peak_mib:.0f}"),
    ("vs naive", "{vs_naive:.2f}x"), ("CPU ms/step", "{cpu_ms_per_step:.0f}"),
    ("%fp32 GEMM (CPU)", "{pct_fp32_gemm_cpu:.0f}%"),
    ("vs naive (CPU)", "{vs_naive_cpu:.2f}x"),
    ("note", "{note}"), ("error", "{error}"),
]


def record_row(result: Result, naive: dict[tuple, Result]) -> dict:
    """The fields of one row of the JSON record (numbers unrounded; a field that was not
    measured is left out)."""
    c = result.case
    kind = row(result, naive)[0]
    fields = dict(model=kind, data=c.data, B=c.B, T=c.T, dtype=c.dtype,
                  attention="-" if c.model == "naive" else c.attention)
    if c.note:
        fields["note"] = c.note
    if result.error:
        return {**fields, "error": result.error}
    step, cpu = result.step_s, result.step_cpu_s
    base = naive.get((c.data, c.B, c.T))
    compared = base is not None and c.model != "full"
    gflop = result.flops / 1e9
    values = dict(
        ms_per_step=step * 1e3, ms_per_window=step / c.B * 1e3,
        windows_per_s=c.B / step,
        gflop=gflop, gflop_run=result.executed_flops / 1e9,
        pct_fp32_gemm=100 * gflop / step / result.gemm_gflops, peak_mib=result.peak_mib,
        vs_naive=base.step_s / step if compared else math.nan,
        cpu_ms_per_step=cpu * 1e3,
        pct_fp32_gemm_cpu=100 * gflop / cpu / result.gemm_cpu_gflops,
        vs_naive_cpu=base.step_cpu_s / cpu if compared else math.nan,
    )
    return {**fields, **{k: v for k, v in values.items() if math.isfinite(v)}}


def row(result: Result, naive: dict[tuple, Result]) -> list[str]:
    """A table row; the three CPU-time columns are blank on CUDA."""
    c = result.case
    kind = {"mlad": f"MLAD {c.implementation}", "naive": "naive (public layout)", "full": f"CT x CT, L={c.L}"}[c.model]
    if c.compile:
        kind += ", compiled"
    attention = "-" if c.model == "naive" else c.attention
    if result.error:
        return [kind, c.data, str(c.B), str(c.T), c.dtype, attention, result.error] + [""] * 10 + [c.note]

    def percent(flop_rate: float, gemm_rate: float) -> str:
        return "" if math.isnan(flop_rate) or math.isnan(gemm_rate) else f"{flop_rate / gemm_rate * 100:.0f}%"

    def ratio(theirs: float, ours: float) -> str:
        return "" if math.isnan(theirs) or math.isnan(ours) or c.model == "full" else f"{theirs / ours:.2f}x"

    step, cpu = result.step_s, result.step_cpu_s
    base = naive.get((c.data, c.B, c.T))
    return [
        kind, c.data, str(c.B), str(c.T), c.dtype, attention,
        f"{step * 1e3:.0f}", f"{step / c.B * 1e3:.1f}", f"{c.B / step:.2f}", f"{result.flops / 1e9:.1f}",
        f"{result.executed_flops / 1e9:.1f}",
        percent(result.flops / step / 1e9, result.gemm_gflops), f"{result.peak_mib:.0f}",
        ratio(base.step_s, step) if base else "",
        "" if math.isnan(cpu) else f"{cpu * 1e3:.0f}",
        percent(result.flops / cpu / 1e9, result.gemm_cpu_gflops),
        ratio(base.step_cpu_s, cpu) if base else "",
        c.note,
    ]


def print_table(rows: list[list[str]]) -> None:
    header = HEADER
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths]] + rows:
        print(" | ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16", "both"], default="both",
                        help="MLAD's precision(s); bf16 = autocast, where the hardware supports it. "
                             "The naive rows are always fp32.")
    parser.add_argument("--compile", action="store_true", help="add a torch.compile'd MLAD row "
                        "(on CUDA at the largest batch size only)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test in seconds")
    parser.add_argument("--data", nargs="+", choices=sorted(PAPER), default=sorted(PAPER, reverse=True))
    parser.add_argument("--batch-sizes", type=int, nargs="+", help="default: 1 4 on CPU, 1 8 32 on CUDA")
    parser.add_argument("--repeats", type=int, help="timed steps per row (default 3 on CPU, 5 on CUDA)")
    parser.add_argument("--search-batch", type=int, default=1, help="batch size of the largest-T searches")
    parser.add_argument("--max-trial-s", type=float, default=3.0, help="largest-T search: slowest step allowed")
    parser.add_argument("--time-budget-s", type=float, help="skip the rows and searches not started by then")
    parser.add_argument("--threads", type=int, help="torch's intra-op threads (default: torch's choice)")
    parser.add_argument("--optimizer", choices=["fused", "default"], default="fused",
                        help="Adam(fused=True), or torch's default Adam implementation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-malloc-defaults", action="store_true",
                        help="leave glibc malloc's thresholds as they are (default: mladlib.utils.keep_freed_memory)")
    parser.add_argument("--out", type=Path,
                        help="also write the run as a JSON record here "
                             "(benchmarks/render_tables.py renders it in the README)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cpu" and not args.keep_malloc_defaults:
        keep_freed_memory()  # as `train --keep-freed-memory` does: freed activations stay mapped

    if args.child:  # one row in a fresh process (CPU peak memory)
        result = run_case(Case(**json.loads(args.child)), args.seed, gemm=False)
        print(json.dumps(dict(times_s=result.times_s, peak_mib=result.peak_mib, gemm_gflops=result.gemm_gflops,
                              params=result.params, error=result.error)))
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")

    cases, searches = plan(args)
    print(f"# {machine(args.device)}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    if args.device == "cpu":
        print(f"# bf16 autocast on CPU: {'supported' if bf16_supported('cpu') else 'not supported by this processor'}")
    results: list[Result] = []
    started = time.perf_counter()

    def over_budget() -> bool:
        return args.time_budget_s is not None and time.perf_counter() - started > args.time_budget_s

    # compiled rows last: compilation is the slowest and least certain part of a sweep
    cases = sorted(cases, key=lambda c: c.compile)
    if args.device == "cpu":
        results.extend(run_on_cpu(cases, args.seed))
    for case in cases if args.device == "cuda" else []:
        if over_budget():
            results.append(Result(case, error="skipped: time budget spent"))
            continue
        result = run_case(case, args.seed)
        results.append(result)
        print(f"#   {case.model} {case.data} B={case.B} {case.dtype} {case.attention}"
              f"{' compiled' if case.compile else ''}: {result.step_s * 1e3:.0f} ms {result.error}",
              file=sys.stderr, flush=True)
    for case, start, limit in searches:
        if over_budget():
            results.append(Result(case, error="skipped: time budget spent"))
            continue
        best, stop = largest_T(case, start, limit, args.max_trial_s, args.seed)
        print(f"#   largest T, {case.model} {case.attention}: {best.case.T if best else None} ({stop})",
              file=sys.stderr, flush=True)
        if best is not None:
            results.append(replace(best, case=replace(best.case, note=f"largest T (one cold step); next: {stop}")))
        else:
            results.append(Result(replace(case, note=stop), error="no T fits"))

    params = {}
    for r in results:
        if r.case.model in ("mlad", "naive") and r.params:
            params.setdefault((r.case.data, r.case.model), r.params)
    for data in dict.fromkeys(r.case.data for r in results):
        mlad, naive = params.get((data, "mlad")), params.get((data, "naive"))
        if mlad or naive:
            counts = f"MLAD {mlad:,}, naive {naive:,}" if mlad and naive else f"{mlad or naive:,}"
            print(f"# parameters, {data}: {counts}")
    measured = [r for r in results if not math.isnan(r.gemm_gflops)]
    if measured:
        wall = statistics.median(r.gemm_gflops for r in measured)
        line = f"# large fp32 GEMM (the %fp32 GEMM yardstick), median of rows: {wall:.0f} GFLOP/s"
        if args.device == "cpu":
            cpu = statistics.median(r.gemm_cpu_gflops for r in measured)
            line += f" per wall-clock second, {cpu:.0f} per CPU second"
        bf16_rates = [r.gemm_bf16_gflops for r in measured if not math.isnan(r.gemm_bf16_gflops)]
        if bf16_rates:
            line += f"; bf16 GEMM for reference: {statistics.median(bf16_rates):.0f} GFLOP/s"
        print(line)
    naive = {(r.case.data, r.case.B, r.case.T): r for r in results if r.case.model == "naive" and not r.error}
    print_table([row(r, naive) for r in results])
    if args.out:
        from benchmarks.records import make_record, write_record

        gemm = {}  # GFLOP/s of the yardstick matmuls, medians over the rows
        if measured:
            gemm["fp32"] = statistics.median(r.gemm_gflops for r in measured)
        if measured and args.device == "cpu":
            gemm["fp32_cpu"] = statistics.median(r.gemm_cpu_gflops for r in measured)
        bf16_rates = [r.gemm_bf16_gflops for r in measured
                      if not math.isnan(r.gemm_bf16_gflops)]
        if bf16_rates:
            gemm["bf16"] = statistics.median(bf16_rates)
        gpu = torch.cuda.get_device_name() if args.device == "cuda" else None
        where = dict(cpu=cpu_name(), cores=os.cpu_count(), gpu=gpu,
                     torch_threads=torch.get_num_threads())
        record = make_record(
            "bench_model", "Training step of MLAD against the public layout", where,
            [dict(label=label, cell=cell) for label, cell in COLUMNS],
            [record_row(r, naive) for r in results],
            argv=[__file__, *(argv or sys.argv[1:])], gemm_gflops=gemm,
            parameters={f"{d}, {m}": n for (d, m), n in params.items()},
        )
        print(f"record written to {write_record(args.out, record)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
