"""Command line: ``python -m mladlib <command> [options]``."""

from __future__ import annotations

import argparse
import sys

import torch

from .models import MODEL_VARIANTS, build_model, count_parameters
from .utils import seed_everything


def smoke(args: argparse.Namespace) -> int:
    """Build every model variant and run one forward/backward pass on random features."""
    seed_everything(args.seed)
    x = torch.randn(2, 32, 64)
    for name in MODEL_VARIANTS:
        model = build_model(name, 10, 64, hidden_dim=16, num_layers=2)
        out = model(x)
        out.logits.mean().backward()
        print(f"{name:<18} params {count_parameters(model):>8,d}  logits {tuple(out.logits.shape)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mladlib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("smoke", help="run every model variant once on random features")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=smoke)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
