"""CAM quickstart on CPU: generates the shapes data set, trains a small Res2Net classifier,
evaluates its Grad-CAM / Grad-CAM++ localisation against whole-image and centre-box baselines
computed in the same run, and writes the figure.

  python tools/cam_quickstart.py --output output/cam_quickstart
"""
import argparse
import logging

import torch

from res2net_det.engines.cam_quickstart import run_cam_quickstart


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="output/cam_quickstart")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--max-train-seconds", type=float, default=None,
                        help="stop training early after this long (reported in the summary)")
    parser.add_argument("--methods", nargs="+", default=["gradcam", "gradcam++"])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    summary = run_cam_quickstart(args.output, image_size=args.image_size, epochs=args.epochs,
                                 max_train_seconds=args.max_train_seconds, methods=args.methods, seed=args.seed)
    print(summary["table"])
    print(f"validation accuracy {summary['val_accuracy']:.1f}%  "
          f"training {summary['train']['seconds']} s ({summary['train']['epochs_done']} epochs)  "
          f"total {summary['seconds']} s")
    print(f"{args.methods[0]} GT-known Loc {summary[args.methods[0] + '_gt_known_loc']:.1f}%  vs  "
          f"centre box {summary['baseline_centre_box_gt_known_loc']:.1f}%  "
          f"whole image {summary['baseline_whole_image_gt_known_loc']:.1f}%  "
          f"(unaligned maps {summary[args.methods[0] + '_unaligned_gt_known_loc']:.1f}%)")
    print(f"figure: {summary['figure']}  model card: {summary['model_card']}")


if __name__ == "__main__":
    main()
