"""Prints Params (M) and GFLOPs of every Res2Net variant, counted like the mmcls model page.

Columns: Params of the classifier; GFLOPs of the backbone (no classifier, multiply-accumulates)
with mmcv's element-wise rules (BN, ReLU, pooling), fvcore's default count (conv + BN), and
convolutions only. See res2net_det/evaluation/complexity.py for the rules.

examples:
  python tools/model_stats.py                       # every variant at 224x224
  python tools/model_stats.py --size 800 1333       # at a detection input size
"""
import argparse
import warnings

import torch

from res2net_det.evaluation.complexity import complexity_table
from res2net_det.modeling.res2net import VARIANTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=list(VARIANTS), help="variant names (default: all)")
    parser.add_argument("--size", type=int, nargs=2, default=(224, 224), metavar=("H", "W"),
                        help="input height and width for the GFLOPs count")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", module="torch.jit")  # tracing warnings say nothing here
    print(f"input 1x3x{args.size[0]}x{args.size[1]}")
    print(complexity_table(args.models, args.size))


if __name__ == "__main__":
    main()
