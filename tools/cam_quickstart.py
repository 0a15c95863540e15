"""CAM quickstart on CPU: trains a small Res2Net classifier on the generated shapes data set with
the generic trainer (configs/cam/quickstart.yaml), evaluates its Grad-CAM / Grad-CAM++
localisation against whole-image and centre-box baselines computed in the same run, and writes
the figure.

  python tools/cam_quickstart.py --output output/cam_quickstart [KEY VALUE ...]

Config options go at the end, e.g. SOLVER.MAX_ITER 250 NUM_THREADS 1.
"""
import argparse

from res2net_det.engines.cam_quickstart import DEFAULT_CONFIG, run_cam_quickstart


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", default=DEFAULT_CONFIG, metavar="FILE")
    parser.add_argument("--output", default=None, help="OUTPUT_DIR (default: the config's)")
    parser.add_argument("--methods", nargs="+", default=["gradcam", "gradcam++"])
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config KEY VALUE pairs, after all flags")
    args = parser.parse_args()
    opts = list(args.opts or []) + (["OUTPUT_DIR", args.output] if args.output else [])
    summary = run_cam_quickstart(args.config_file, opts, methods=args.methods)
    print(summary["table"])
    print(f"validation accuracy {summary['val_accuracy']:.1f}%  "
          f"training {summary['train']['seconds']} s ({summary['train']['iterations']} iterations)  "
          f"total {summary['seconds']} s")
    m = args.methods[0]
    print(f"{m} GT-known Loc {summary[m + '_gt_known_loc']:.1f}%  vs  "
          f"centre box {summary['baseline_centre_box_gt_known_loc']:.1f}%  "
          f"whole image {summary['baseline_whole_image_gt_known_loc']:.1f}%  "
          f"(aligned maps {summary[m + '_aligned_gt_known_loc']:.1f}%)")
    print(f"figure: {summary['figure']}  model card: {summary['model_card']}")


if __name__ == "__main__":
    main()
