"""Training-epoch and sliding-inference throughput of MLAD on the embedded dataset, data loading included.

The embedded dataset at ``--size multithumos`` has MultiTHUMOS's shape: 200 training and
213 test videos of about 650 steps, 2048-d features, written as one HDF5 file per split in
the real layout and read lazily, window by window (``--in-memory`` reads it once first).
It has 25 classes; with ``--classes 65`` (the default) the model predicts MultiTHUMOS's 65
and the 40 extra label columns are all zero, so every step costs exactly what a
MultiTHUMOS step costs (C = 65, T = 128, F = 2048, H = 128, L = 5, batch 32).

Three measurements, each one table row:

* ``train epoch``: the trainer's inner loop (:func:`mladlib.data.window_loader`: the
  trainer's pipeline, a ``WindowSampler``'s batches of ``WindowDataset`` through a
  ``DataLoader``, as :mod:`mladlib.train.run_parts` builds it, over the training split, one window of T = 128 per about 128 steps of video, so about 1,000
  windows per epoch; forward, the paper's loss on the initial and final logits, backward,
  Adam at 1e-4; on CPU in chunks of ``--micro-batch`` 8 windows with the gradients
  accumulated, as batch 32 would need about 30 GB of activations in fp32), with the time
  spent waiting for the next batch (reading, slicing, collating, copying to the device)
  and the time in the model step counted apart; the
  device is synchronised after each step so the split is exact. ``model step %`` is the
  share of the epoch spent in the model step. A warm-up batch is run and not counted.
* ``data only``: the same epoch's batches read and collated without a model: how many
  windows per second the loader could feed.
* ``sliding inference``: :func:`mladlib.train.predict` over the test split (windows
  of 128 every 64 steps, each frame scored once as the mean of its windows), frames per
  second.

On CPU the full epoch takes about 20 minutes (about 1 s per window at this size), so by
default only ``--windows 128`` of it and ``--test-videos 16`` test videos are run; the
table says how many. On CUDA the defaults are the full epoch and the whole test set, bf16.

    python benchmarks/bench_train.py                                   # CPU, part of an epoch
    python benchmarks/bench_train.py --device cuda --compile           # GPU: full epoch, bf16
    python benchmarks/bench_train.py --quick                           # default embedded data, small model

Prints one table (progress goes to stderr); ``--out FILE`` also writes it as a JSON
record (``benchmarks/records.py``). Exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mladlib import synth  # noqa: E402
from mladlib.data import VideoDataset, window_loader  # noqa: E402
from mladlib.models import build_model, count_parameters  # noqa: E402
from mladlib.train import predict  # noqa: E402
from mladlib.train.inference import autocast_context  # noqa: E402
from mladlib.train.loss import mlad_loss  # noqa: E402
from mladlib.utils import cpu_name, keep_freed_memory, seed_everything  # noqa: E402


class FirstClasses(nn.Module):
    """Keep the first ``k`` logits ``(B, T, k)`` of a model predicting more classes."""

    def __init__(self, model: nn.Module, k: int) -> None:
        super().__init__()
        self.model, self.k = model, k

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.model(x, mask).logits[..., : self.k]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def pad_classes(labels: Tensor, num_classes: int) -> Tensor:
    """``(B, T, C_data)`` -> ``(B, T, num_classes)``, the extra classes never present."""
    extra = num_classes - labels.shape[-1]
    return torch.nn.functional.pad(labels, (0, extra)) if extra > 0 else labels


def train_epoch(model: nn.Module, videos: VideoDataset, args: argparse.Namespace, device: torch.device) -> dict:
    """Time ``args.windows`` windows of an epoch; returns seconds waiting for data, in the step, in all."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, fused=device.type == "cuda" or None)
    forward = torch.compile(model) if args.compile else model
    def amp() -> contextlib.AbstractContextManager:
        return autocast_context(device, torch.bfloat16 if args.dtype == "bf16" else None)

    def step(batch) -> float:
        """One optimizer step on the batch, in chunks of ``args.micro_batch`` windows (gradient accumulation)."""
        y_all = pad_classes(batch.labels, args.classes)
        total = 0.0
        for first in range(0, batch.features.shape[0], args.micro_batch):
            chunk = slice(first, first + args.micro_batch)
            x, y, mask = batch.features[chunk], y_all[chunk], batch.mask[chunk]
            mask = None if bool(mask.all()) else mask
            with amp():
                out = forward(x, mask)
            loss = mlad_loss(out.logits, out.initial_logits, y, mask)
            share = x.shape[0] / batch.features.shape[0]
            (loss.total * share).backward()
            total += share * float(loss.total.detach())
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return total

    def loader(windows: int | None, epoch: int):
        dl = window_loader(videos, args.batch_size, args.window, variable_length=args.variable_length,
                           seed=args.seed, num_workers=args.num_workers, windows_per_epoch=windows,
                           pin_memory=device.type == "cuda")
        dl.batch_sampler.set_epoch(epoch)
        return dl

    model.train()
    for batch in loader(args.batch_size, epoch=10_000):  # warm-up (allocations, compilation): not counted
        step(batch.to(device))
    sync(device)

    full_epoch = len(loader(None, 0))  # batches in a whole epoch
    dl = loader(args.windows, 0)
    waiting = stepping = 0.0
    windows = batches = 0
    started = time.perf_counter()
    batches_iter = iter(dl)
    while True:
        t0 = time.perf_counter()
        try:
            batch = next(batches_iter)
        except StopIteration:
            break
        batch = batch.to(device, non_blocking=True)
        sync(device)
        t1 = time.perf_counter()
        loss = step(batch)
        sync(device)
        t2 = time.perf_counter()
        waiting, stepping = waiting + t1 - t0, stepping + t2 - t1
        windows += batch.features.shape[0]
        batches += 1
        print(f"  batch {batches}/{len(dl)}: data {t1 - t0:.3f} s, step {t2 - t1:.3f} s, loss {loss:.4f}",
              file=sys.stderr)
    total = time.perf_counter() - started

    data_started = time.perf_counter()  # the same batches again, without a model
    data_windows = sum(b.features.shape[0] for b in loader(args.windows, 0))
    data_only = time.perf_counter() - data_started
    return dict(windows=windows, batches=batches, full_epoch_batches=full_epoch, waiting=waiting,
                stepping=stepping, total=total, data_windows=data_windows, data_only=data_only)


def inference(model: nn.Module, videos: VideoDataset, args: argparse.Namespace, device: torch.device) -> dict:
    subset = videos
    if args.test_videos is not None and args.test_videos < len(videos):
        ids = videos.video_ids[: args.test_videos]
        subset = VideoDataset(videos.spec, dict(zip(videos.video_ids, videos.records)), videos.store.location, ids,
                              in_memory=args.in_memory)
    wrapped = FirstClasses(model, videos.num_classes)
    autocast = torch.bfloat16 if args.dtype == "bf16" else None
    predict(wrapped, subset, window=args.window, batch_size=args.batch_size, device=device,
            autocast=autocast)  # warm-up, also fills the page cache alike for every run
    sync(device)
    started = time.perf_counter()
    scores = predict(wrapped, subset, window=args.window, batch_size=args.batch_size,
                     device=device, autocast=autocast)
    sync(device)
    seconds = time.perf_counter() - started
    frames = sum(len(s) for s in scores.values())
    return dict(videos=len(scores), frames=frames, seconds=seconds)


#: The JSON record's columns (``benchmarks/records.py``): the printed table's.
COLUMNS = [
    dict(label="what", cell="{what}"), dict(label="measured", cell="{measured}"),
    dict(label="seconds", cell="{seconds:.2f}"),
    dict(label="throughput", cell="{throughput:,.1f} {throughput_unit}"),
    dict(label="model step %", cell="{model_step_pct:.1f}"),
    dict(label="whole split, s (est.)", cell="{whole_split_s:.1f}"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--size", default="multithumos", choices=sorted(synth.SIZES), help="embedded dataset size")
    parser.add_argument("--quick", action="store_true", help="default embedded data, H 32, L 2: seconds")
    parser.add_argument("--classes", type=int, default=65, help="classes the model predicts (>= the data's "
                        f"{len(synth.CLASS_NAMES)})")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--micro-batch", type=int, help="windows per forward/backward, gradients accumulated "
                        "to the batch (default: the batch on CUDA, 8 on CPU: batch 32 at the paper's size needs "
                        "about 30 GB of activations in fp32)")
    parser.add_argument("--variable-length", action="store_true", help="T drawn from {16, 32, ..., window} per batch")
    parser.add_argument("--windows", type=int, help="windows of the epoch to time (default: all on CUDA, 128 on CPU)")
    parser.add_argument("--test-videos", type=int, help="test videos to score (default: all on CUDA, 16 on CPU)")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], help="default: bf16 on CUDA, fp32 on CPU")
    parser.add_argument("--compile", action="store_true", help="torch.compile the training step (inference stays eager)")
    parser.add_argument("--in-memory", action="store_true", help="read the features once before timing")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--threads", type=int, help="torch's intra-op threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path,
                        help="also write the run as a JSON record here "
                             "(benchmarks/render_tables.py renders it in the README)")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.hidden, args.layers, args.window, args.classes = "default", 32, 2, 64, len(synth.CLASS_NAMES)
        args.windows, args.test_videos = args.windows or 64, args.test_videos or 8
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cpu":
        keep_freed_memory()  # as `python -m mladlib train --keep-freed-memory` does
    on_cpu = args.device == "cpu"
    if args.windows is None and on_cpu:
        args.windows = 128
    if args.test_videos is None and on_cpu:
        args.test_videos = 16
    args.dtype = args.dtype or ("fp32" if on_cpu else "bf16")
    args.micro_batch = args.micro_batch or (min(8, args.batch_size) if on_cpu else args.batch_size)
    device = torch.device(args.device)
    seed_everything(args.seed)

    started = time.perf_counter()
    root = synth.dataset_root(args.size, args.seed)
    print(f"embedded dataset {root} ready in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    spec = synth.synthetic_spec(args.size)
    train = VideoDataset.from_folder(root, "train", spec, in_memory=args.in_memory)
    test = VideoDataset.from_folder(root, "test", spec, in_memory=args.in_memory)
    if args.classes < train.num_classes:
        parser.error(f"--classes {args.classes} is fewer than the data's {train.num_classes}")
    model = build_model("mlad", args.classes, train.feature_dim, hidden_dim=args.hidden,
                        num_layers=args.layers).to(device)
    print(f"MLAD C {args.classes} F {train.feature_dim} H {args.hidden} L {args.layers}: "
          f"{count_parameters(model):,} parameters", file=sys.stderr)

    t = train_epoch(model, train, args, device)
    i = inference(model, test, args, device)

    where = torch.cuda.get_device_name() if device.type == "cuda" else f"{cpu_name()}, {torch.get_num_threads()} threads"
    print(f"\n{where}; torch {torch.__version__}; {time.strftime('%Y-%m-%d')}")
    print(f"embedded dataset '{args.size}': {len(train)} train / {len(test)} test videos, "
          f"{sum(train.frame_counts):,} / {sum(test.frame_counts):,} steps, {train.feature_dim}-d, "
          f"features {'in memory' if args.in_memory else 'read lazily from HDF5'}, {args.num_workers} loader workers")
    print(f"model: MLAD C {args.classes} T {args.window} F {train.feature_dim} H {args.hidden} L {args.layers}, "
          f"{args.dtype}{', compiled' if args.compile else ''}, batch {args.batch_size}"
          f"{f' in chunks of {args.micro_batch}' if args.micro_batch < args.batch_size else ''}"
          f"{', variable length' if args.variable_length else ''}\n")
    epoch_windows = t["full_epoch_batches"] * args.batch_size
    rows = [
        ("train epoch", f"{t['windows']} of {epoch_windows} windows", f"{t['total']:.2f}",
         f"{t['windows'] / t['total']:.1f} windows/s", f"{100 * t['stepping'] / t['total']:.1f}",
         f"{epoch_windows * t['total'] / t['windows']:.1f}"),
        ("data only", f"{t['data_windows']} windows", f"{t['data_only']:.2f}",
         f"{t['data_windows'] / t['data_only']:.0f} windows/s", "", ""),
        ("sliding inference", f"{i['videos']} of {len(test)} test videos, {i['frames']:,} frames", f"{i['seconds']:.2f}",
         f"{i['frames'] / i['seconds']:,.0f} frames/s", "",
         f"{sum(test.frame_counts) * i['seconds'] / i['frames']:.1f}"),
    ]
    header = ("what", "measured", "seconds", "throughput", "model step %", "whole split, s (est.)")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(f"\ntrain epoch: {t['waiting']:.2f} s waiting for batches, {t['stepping']:.2f} s in model steps. "
          "'est.' scales the measured part to the whole split (exact when all of it was run).")
    if args.out:
        from benchmarks.records import make_record, write_record

        records = [
            dict(what="train epoch", measured=rows[0][1], seconds=t["total"],
                 throughput=t["windows"] / t["total"], throughput_unit="windows/s",
                 model_step_pct=100 * t["stepping"] / t["total"],
                 whole_split_s=epoch_windows * t["total"] / t["windows"]),
            dict(what="data only", measured=rows[1][1], seconds=t["data_only"],
                 throughput=t["data_windows"] / t["data_only"],
                 throughput_unit="windows/s"),
            dict(what="sliding inference", measured=rows[2][1], seconds=i["seconds"],
                 throughput=i["frames"] / i["seconds"], throughput_unit="frames/s",
                 whole_split_s=sum(test.frame_counts) * i["seconds"] / i["frames"]),
        ]
        gpu = torch.cuda.get_device_name() if device.type == "cuda" else None
        where = dict(cpu=cpu_name(), cores=os.cpu_count(), gpu=gpu,
                     torch_threads=torch.get_num_threads())
        settings = dict(dtype=args.dtype, batch=args.batch_size,
                        micro_batch=args.micro_batch, C=args.classes, T=args.window,
                        F=train.feature_dim, H=args.hidden, L=args.layers,
                        num_workers=args.num_workers, compile=args.compile)
        command = [__file__, *(argv if argv is not None else sys.argv[1:])]
        record = make_record(
            "bench_train", f"Training epoch and sliding inference, '{args.size}' data",
            where, COLUMNS, records, argv=command, settings=settings,
            waiting_s=t["waiting"], stepping_s=t["stepping"],
        )
        print(f"record written to {write_record(args.out, record)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
