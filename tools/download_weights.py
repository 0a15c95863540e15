#!/usr/bin/env python3
"""Fetches published weights into the cache ahead of time (for machines without internet), or
lists the weights table.

  python tools/download_weights.py --list
  python tools/download_weights.py res2net://res2net50_26w_4s torchvision://resnet50 timm://res2net50d
  RES2NET_DET_WEIGHTS_MIRROR=http://mirror.internal python tools/download_weights.py --all

Names: res2net://VARIANT (the official Res2Net-PretrainedModels file, every host that serves it
tried in order), timm://NAME (timm's hub file, model.safetensors), torchvision://resnet50 (the
ResNet-50 baseline's classic IMAGENET1K_V1 file), or any http(s):// URL. Files land in
$RES2NET_DET_CACHE (default: res2net_det/ under torch.hub's folder); copy that folder to a machine
without internet, point $RES2NET_DET_CACHE at it, and MODEL.WEIGHTS res2net://... reads them there.
Each file is checked: the official and torchvision names carry a sha256 prefix; timm's files get
their sha256 recorded at the first download and compared afterwards.
"""
import argparse
import sys

from res2net_det.modeling.pretrained import WEIGHTS, weights_table
from res2net_det.modeling.weights import CheckpointError, resolve_weights
from res2net_det.utils.logger import setup_logger


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME", help="weights names or URLs to fetch")
    parser.add_argument("--list", action="store_true",
                        help="print the weights table and the cache folder, fetch nothing")
    parser.add_argument("--all", action="store_true", help="fetch every file of the table")
    parser.add_argument("--accept-checksum-mismatch", action="store_true",
                        help="keep a file whose sha256 disagrees with the expected one (a file you trust; "
                             "its digest is recorded and later uses are checked against it)")
    args = parser.parse_args(argv)
    if args.list:
        print(weights_table())
        return 0
    names = list(WEIGHTS) if args.all else args.names
    if not names:
        parser.error("name the weights to fetch (or --all, or --list)")
    setup_logger(None, 0)
    failed = 0
    for name in names:
        try:
            path = resolve_weights(name, accept_checksum_mismatch=args.accept_checksum_mismatch, progress=None)
            print(f"{name}: {path}")
        except (OSError, KeyError, CheckpointError) as e:
            print(f"{name}: FAILED: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
