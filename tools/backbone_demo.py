"""Builds each Res2Net variant, runs a forward pass on an embedded picture and prints feature shapes.

examples:
  python tools/backbone_demo.py
  python tools/backbone_demo.py --models res2net101_26w_4s resnet50 --size 800 1216
"""
import argparse

import torch

import res2net_det


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=["res2net50_26w_4s", "res2net50_v1b_26w_4s", "res2next50"],
                        help="variant names (res2net_det.list_models())")
    parser.add_argument("--size", type=int, nargs=2, default=(224, 320), metavar=("H", "W"),
                        help="input height and width")
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.rand(1, 3, *args.size)
    for name in args.models:
        model = res2net_det.create_model(name).eval()
        with torch.no_grad():
            feats = model.forward_features(x)
            logits = model(x)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        shapes = ", ".join(f"{k} {tuple(v.shape[1:])}" for k, v in feats.items())
        print(f"{name:24s} {params:6.2f}M params  logits {tuple(logits.shape)}  {shapes}")


if __name__ == "__main__":
    main()
