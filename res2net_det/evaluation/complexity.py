"""Parameter and FLOP counts of the Res2Net family, the way published model tables count them.

Counting is fvcore's :class:`~fvcore.nn.FlopCountAnalysis` (a traced op-level counter); we
only add op handles so that its totals follow the mmcls / mmpretrain model page, which used
mmcv's ``get_model_complexity_info``:

* multiply-accumulates are reported as "FLOPs" (fvcore does the same for convolutions);
* the classifier is left out of FLOPs (mmcls counts ``extract_feat``), but its parameters are in
  Params (mmcv counts every parameter of the model);
* element-wise modules count one op per element: batch norm 2 per input element (scale and
  shift; fvcore's inference handle agrees), ReLU 1 per output element, max/average pooling 1 per
  *input* element;
* the residual additions are functional calls, not modules, so mmcv never saw them: not counted.

With these rules the totals match the published table (e.g. Res2Net-50-14w-8s 25.06M / 4.22G).
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Any, Dict, List, Sequence, Tuple

import torch
from torch import nn

from ..modeling.res2net import create_model

__all__ = ["Complexity", "count_params", "count_flops", "model_complexity", "complexity_table"]


def _input_elements(inputs: List[Any], outputs: List[Any]) -> int:
    from fvcore.nn.jit_handles import get_shape

    return prod(get_shape(inputs[0]))


def _output_elements(inputs: List[Any], outputs: List[Any]) -> int:
    from fvcore.nn.jit_handles import get_shape

    return prod(get_shape(outputs[0]))


# mmcv's per-module rules, as fvcore op handles (batch norm keeps fvcore's own handle, which in
# eval mode already counts 2 per element with affine parameters, as mmcv does).
MMCV_ELEMENTWISE_HANDLES = {
    "aten::relu": _output_elements,
    "aten::relu_": _output_elements,
    "aten::max_pool2d": _input_elements,
    "aten::avg_pool2d": _input_elements,
}


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers such as BN statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, inputs: Tuple[torch.Tensor, ...]) -> Dict[str, Dict[str, int]]:
    """Multiply-accumulates of ``model(*inputs)`` per operator, in three styles, from one trace.

    ``"mmcls"``: fvcore's default op set plus mmcv's element-wise rules; ``"fvcore"``: fvcore's
    default op set (conv, linear, batch norm, ...); ``"conv"``: convolutions and linear layers.
    """
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(model, inputs)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    analysis.set_op_handle(**MMCV_ELEMENTWISE_HANDLES)
    mmcls = dict(analysis.by_operator())
    # by_operator() names ops by their handle's short name (aten::relu_ -> relu_)
    mmcv_only = {name.split("::")[-1] for name in MMCV_ELEMENTWISE_HANDLES}
    return {
        "mmcls": mmcls,
        "fvcore": {k: v for k, v in mmcls.items() if k not in mmcv_only},
        "conv": {k: v for k, v in mmcls.items() if k in ("conv", "linear", "addmm", "matmul")},
    }


@dataclass
class Complexity:
    """Counts of one model at one input size."""

    name: str
    params: int
    gflops_mmcls: float
    gflops_fvcore: float
    gflops_conv: float

    def row(self) -> str:
        return (f"{self.name:24s} {self.params / 1e6:10.2f} {self.gflops_mmcls:12.2f} "
                f"{self.gflops_fvcore:13.2f} {self.gflops_conv:11.2f}")


HEADER = f"{'model':24s} {'Params (M)':>10s} {'GFLOPs mmcls':>12s} {'GFLOPs fvcore':>13s} {'GFLOPs conv':>11s}"


def model_complexity(name: str, size: Sequence[int] = (224, 224)) -> Complexity:
    """Params of the classifier and GFLOPs of its backbone (no classifier) at ``size``."""
    params = count_params(create_model(name))
    backbone = create_model(name, num_classes=0, out_features=("res5",)).eval()
    x = torch.zeros(1, 3, *size)
    with torch.no_grad():
        totals = {style: sum(by_op.values()) / 1e9 for style, by_op in count_flops(backbone, (x,)).items()}
    return Complexity(name, params, totals["mmcls"], totals["fvcore"], totals["conv"])


def complexity_table(names: Sequence[str], size: Sequence[int] = (224, 224)) -> str:
    """The printed table of :func:`model_complexity` for ``names``."""
    lines = [HEADER] + [model_complexity(n, size).row() for n in names]
    return "\n".join(lines)
