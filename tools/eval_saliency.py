"""Evaluates saliency maps with pysodmetrics: MAE, max/mean/adaptive F-measure (beta^2 = 0.3),
S-measure, max/mean/adaptive E-measure and weighted F-measure; one table row per data set and
method, JSON, and PR / F-measure-vs-threshold curve PNGs.

    # one method, one data set
    python tools/eval_saliency.py --pred predictions/r2_50/ECSSD --gt datasets/ECSSD/Mask
    # two methods on two data sets: each --pred folder has one sub-folder per --dataset name
    python tools/eval_saliency.py --pred predictions/r2_50 predictions/r_50 --method Res2Net-50 ResNet-50 \
        --gt datasets/ECSSD/Mask datasets/PASCAL-S/Mask --dataset ECSSD PASCAL-S --output output/sod_eval
"""
import argparse
import logging
import sys

from res2net_det.data.saliency import DEFAULT_MASK_TOLERANCE
from res2net_det.evaluation.saliency import evaluate_methods, format_table, write_results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pred", required=True, nargs="+", metavar="DIR", help="prediction folder of each method")
    parser.add_argument("--gt", required=True, nargs="+", metavar="DIR", help="mask folder of each data set")
    parser.add_argument("--dataset", nargs="+", metavar="NAME", help="data set names (default: folder above each --gt)")
    parser.add_argument("--method", nargs="+", metavar="NAME", help="method names (default: each --pred folder's name)")
    parser.add_argument("--output", default="output/sod_eval", metavar="DIR", help="folder for the JSON and PNG curves")
    parser.add_argument("--mask-tolerance", type=float, default=DEFAULT_MASK_TOLERANCE,
                        help="fraction of grey mask pixels accepted as anti-aliased edges (see datasets/README.md)")
    parser.add_argument("--no-plot", action="store_true", help="skip the curve PNGs")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    try:
        results = evaluate_methods(args.pred, args.gt, args.dataset, args.method,
                                   mask_tolerance=args.mask_tolerance, progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_table(results))
    for kind, path in write_results(results, args.output, plot=not args.no_plot).items():
        print(f"{kind}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
