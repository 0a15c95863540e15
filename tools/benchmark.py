"""Speed benchmarks. Each subcommand prints medians of interleaved runs and ratios measured
in the same run (see res2net_det/utils/timing.py). Subcommands:

  backbone   our Res2Net features (PyTorch, fused, onnxruntime) vs timm's Res2Net and torchvision's ResNet-50
  detector   Faster R-CNN R2-50-FPN vs R-50-FPN (torchvision's ResNet-50, and ours) vs timm's Res2Net
             (equal proposals/RoIs): inference, training step, peak memory
  sod        images/s of the PoolNet saliency model on Res2Net-50 vs ResNet-50 (352 x 352)
  bootstrap  paired-bootstrap intervals of COCO AP: 1,000 resamples of a generated COCO-val-sized
             comparison (5,000 images, two runs, 100 detections per image)

Example: python tools/benchmark.py backbone --batch 8 --size 224 224 --threads 2 --repeats 10
"""
import argparse

from res2net_det.evaluation.benchmark import benchmark_backbones, benchmark_saliency
from res2net_det.evaluation.detector_benchmark import (
    DETECTORS,
    available_detectors,
    benchmark_detectors,
    peak_memory_mb,
    saved_activations_mb,
)
from res2net_det.utils.timing import format_timings, set_threads


def run_backbone(args: argparse.Namespace) -> None:
    threads = set_threads(args.threads)
    print(f"input {args.batch}x3x{args.size[0]}x{args.size[1]}, {threads} threads, "
          f"{args.repeats} interleaved repeats, eval, no_grad, features res2..res5")
    timings = benchmark_backbones(args.batch, args.size, args.repeats, args.warmup, args.model,
                                  args.all_layouts)
    onnx_row, fused_row = f"ours {args.model} onnxruntime", f"ours {args.model} fused"
    baselines = [n for n in timings if n.startswith(("timm", "torchvision")) and n.endswith(("resnet50", args.model))]
    print(format_timings(timings, baselines))
    if onnx_row in timings:
        print(f"onnxruntime / PyTorch fused: {timings[onnx_row].median / timings[fused_row].median:.3f}x")
    for peer in ("torchvision resnet50", f"timm {args.model}"):  # like for like: fused vs fused
        if f"{peer} fused" in timings:
            print(f"ours fused / {peer} fused: {timings[fused_row].median / timings[peer + ' fused'].median:.3f}x")


def add_backbone_parser(subparsers) -> None:
    p = subparsers.add_parser("backbone", help="Res2Net features vs timm and torchvision ResNet-50")
    p.add_argument("--model", default="res2net50_26w_4s", help="our variant (timm's of the same name is timed too)")
    p.add_argument("--batch", type=int, default=8, help="images per forward pass")
    p.add_argument("--size", type=int, nargs=2, default=(224, 224), metavar=("H", "W"),
                   help="input height and width in pixels")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (0: leave torch's default)")
    p.add_argument("--repeats", type=int, default=10,
                   help="timed rounds per candidate (interleaved, order rotating); medians are reported")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first (allocator caches, oneDNN primitives)")
    p.add_argument("--all-layouts", action="store_true",
                   help="also time ours, timm and torchvision in channels-last without folding "
                        "(the gain of each step, and a fairer peer for our fused path)")
    p.set_defaults(func=run_backbone)


def run_sod(args: argparse.Namespace) -> None:
    threads = set_threads(args.threads)
    print(f"input {args.batch}x3x{args.size[0]}x{args.size[1]}, {threads} threads, {args.repeats} interleaved "
          "repeats, eval, no_grad, PoolNet (res5 dilated, frozen BN), backbone + decoder + upsampling")
    timings = benchmark_saliency(args.batch, args.size, args.repeats, args.warmup)
    print(format_timings(timings, ["ResNet-50 PoolNet"]))
    for name, t in timings.items():
        print(f"{name}: {args.batch / t.median:.2f} images/s")
    r2, r50 = timings["Res2Net-50 PoolNet"].median, timings["ResNet-50 PoolNet"].median
    print(f"Res2Net-50 / ResNet-50 time per image: {r2 / r50:.3f}x")


def add_sod_parser(subparsers) -> None:
    p = subparsers.add_parser("sod", help="PoolNet saliency model: Res2Net-50 vs ResNet-50 images/s")
    p.add_argument("--batch", type=int, default=1, help="images per forward pass")
    p.add_argument("--size", type=int, nargs=2, default=(352, 352), metavar=("H", "W"),
                   help="input height and width in pixels")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (0: leave torch's default)")
    p.add_argument("--repeats", type=int, default=10,
                   help="timed rounds per candidate (interleaved, order rotating); medians are reported")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first (allocator caches, oneDNN primitives)")
    p.set_defaults(func=run_sod)


def run_detector(args: argparse.Namespace) -> None:
    import importlib.util

    unknown = [n for n in args.models if n not in DETECTORS]
    if unknown or not args.models:
        raise SystemExit(f"--models: unknown {unknown}; choose from {list(DETECTORS)}")
    detectors = available_detectors({n: DETECTORS[n] for n in args.models})
    threads = set_threads(args.threads)
    size = tuple(args.size)
    print(f"engine torchvision: Faster R-CNN + FPN, input {args.batch}x3x{size[0]}x{size[1]}, {args.device}, "
          f"{threads} threads, {args.repeats} interleaved repeats, channels_last={args.channels_last}, "
          f"compile={args.compile}, checkpoint_activations={args.checkpoint_activations}; "
          "BN calibrated then frozen, RPN NMS off, 512 sampled RoIs/image")
    inference, training, counts = benchmark_detectors(
        args.batch, size, args.repeats, args.warmup, args.device, detectors,
        channels_last=args.channels_last, compile_backbone=args.compile,
        checkpoint_activations=args.checkpoint_activations)
    print("workload per image (must match across models):")
    for name, c in counts.items():
        print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in c.items()))
    print("inference (eval, no_grad): backbone, backbone + FPN, whole detector:")
    baselines = [n for n in ("R-50-FPN", "R-50-FPN (ours)") if n in training]
    print(format_timings(inference,
                         [f"{b}{part}" for b in baselines[:1] for part in (" backbone", " backbone+FPN", "")]))
    print("training step (forward, backward, SGD step):")
    print(format_timings(training, baselines + [n for n in training if n.startswith("timm")]))
    peaks = {n: peak_memory_mb(d, args.batch, size, args.device, threads, args.channels_last,
                            args.checkpoint_activations)
             for n, d in detectors.items()}
    saved = {n: saved_activations_mb(d, args.batch, size, args.device, args.channels_last, args.checkpoint_activations)
             for n, d in detectors.items()}
    for title, mib in (("activations kept for backward (MiB, exact)", saved),
                       ("peak memory of a training step (MiB above the built model; CPU: resident-set peak, "
                        "+-20% between runs)", peaks)):
        print(f"{title}: " + ", ".join(
            f"{n} {v:.0f}" + (f" ({v / mib[baselines[0]]:.3f}x)" if baselines else "") for n, v in mib.items()))
    if importlib.util.find_spec("detectron2") is None:
        print("engine detectron2: not installed, not measured")


def add_detector_parser(subparsers) -> None:
    p = subparsers.add_parser("detector", help="Faster R-CNN R2-50-FPN vs R-50-FPN vs timm's Res2Net, equal work")
    p.add_argument("--batch", type=int, default=2, help="images per forward pass")
    p.add_argument("--size", type=int, nargs=2, default=(512, 512), metavar=("H", "W"),
                   help="input height and width in pixels")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (0: leave torch's default)")
    p.add_argument("--repeats", type=int, default=5,
                   help="timed rounds per candidate (interleaved, order rotating); medians are reported")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first (allocator caches, oneDNN primitives)")
    p.add_argument("--channels-last", action="store_true",
                   help="every backbone in channels-last, as MODEL.RES2NET.CHANNELS_LAST "
                        "(FPN and heads follow its outputs)")
    p.add_argument("--compile", action="store_true", help="torch.compile every model's backbone (all alike)")
    p.add_argument("--models", nargs="+", default=list(DETECTORS), metavar="NAME",
                   help=f"candidates to time (default: all): {', '.join(DETECTORS)}; "
                        "ratios are to the R-50-FPN candidates among them")
    p.add_argument("--checkpoint-activations", action="store_true",
                   help="every backbone recomputes its blocks' activations in backward (a memory option)")
    p.set_defaults(func=run_detector)


def run_bootstrap(args: argparse.Namespace) -> None:
    from res2net_det.evaluation.bootstrap_benchmark import benchmark_coco_bootstrap

    times = benchmark_coco_bootstrap(args.images, args.dets_per_image, args.resamples, args.seed)
    print(f"bootstrap time: {times['bootstrap_s']:.1f} s for {args.resamples} resamples "
          f"({times['bootstrap_s'] / args.resamples * 1000:.1f} ms per resample, both runs)")


def add_bootstrap_parser(subparsers) -> None:
    p = subparsers.add_parser("bootstrap", help="time the paired bootstrap of COCO AP at COCO-val size")
    p.add_argument("--images", type=int, default=5000, help="test images (COCO val: 5,000)")
    p.add_argument("--dets-per-image", type=int, default=100, help="detections per image and run")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated data and of the resampling")
    p.set_defaults(func=run_bootstrap)


# Other subcommands register themselves here the same way.
SUBCOMMANDS = [add_backbone_parser, add_detector_parser, add_sod_parser, add_bootstrap_parser]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(subparsers)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
