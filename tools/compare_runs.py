#!/usr/bin/env python3
"""Compares finished runs (OUTPUT_DIRs of tools/train_net.py, of either engine, or CAM / saliency
tool outputs): one table per task and data set with a Δ column against the first run, written
as Markdown + JSON with a bar chart. Each Δ gets its paired-bootstrap 95% interval over the test
images (the runs' evaluators keep per-image data beside their results; --bootstrap 0: off).

  python tools/compare_runs.py output/faster_rcnn_r_50_1x output/faster_rcnn_r2_50_1x --labels R-50 R2-50
  python tools/compare_runs.py output/sod/poolnet_r_50_duts output/sod/poolnet_r2_50_duts --output output/sod_table
"""
import argparse
import os
import sys

from res2net_det.evaluation.bootstrap import DEFAULT_RESAMPLES
from res2net_det.evaluation.compare import compare_runs
from res2net_det.evaluation.comparison_report import format_markdown, write_comparison
from res2net_det.evaluation.run_results import RunNotFinishedError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders; the first is the Δ reference")
    parser.add_argument("--labels", nargs="+", help="a column name per run (default: the folder names)")
    parser.add_argument("--output",
                        help="where comparison.{md,json,png} go (default: comparison/ beside the first run)")
    parser.add_argument("--bootstrap", type=int, default=DEFAULT_RESAMPLES, metavar="N",
                        help="paired bootstrap resamples of the test images for the 95%% interval of each Δ "
                             f"(default {DEFAULT_RESAMPLES}; 0: no intervals)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the resampling")
    args = parser.parse_args(argv)
    if args.bootstrap < 0:
        parser.error("--bootstrap must be >= 0")
    try:
        comparison = compare_runs(args.runs, args.labels, bootstrap=args.bootstrap, seed=args.seed)
    except (RunNotFinishedError, ValueError, FileNotFoundError) as e:
        print(f"compare_runs: {e}", file=sys.stderr)
        return 2
    output = args.output or os.path.join(os.path.dirname(os.path.abspath(args.runs[0])), "comparison")
    paths = write_comparison(comparison, output)
    print(format_markdown(comparison))
    print(f"tables: {paths['markdown']}  json: {paths['json']}  figure: {paths['figure'] or '(nothing to draw)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
