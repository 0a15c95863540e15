"""The split 3x3 section of a Res2Net block with frozen norms, as one autograd function.

Detection trains with FrozenBN; then :class:`SplitConvs` runs a block's split convs writing into one
output tensor and recomputing the hierarchical sums in backward, for the same gradients as the
reference path (``tests/modeling/test_fast_path.py`` checks them in float64 and with gradcheck).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F

__all__ = ["SplitConvs", "is_channels_last"]


def is_channels_last(x: torch.Tensor) -> bool:
    return x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


class SplitConvs(torch.autograd.Function):
    """The split 3x3 section of a Bottle2neck with frozen norms, writing every split's output into its
    slice of one preallocated tensor (what the reference path builds with ``torch.cat``).

    Why by hand: autograd would keep each split's ReLU output, each hierarchical sum and the
    concatenated copy; here backward keeps only the block's input to the splits and the output
    tensor (which conv3 keeps anyway) and recomputes the sums, so a training step stores about a
    fifth less activation memory (see the README's detector benchmark). Frozen norms are folded
    into the conv weights, so a split costs one conv and one ReLU pass.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, pool_last: bool, hierarchical: bool, conv_args: Tuple,
                scales: Tuple[torch.Tensor, ...], shifts: Tuple[torch.Tensor, ...],
                *weights: torch.Tensor) -> torch.Tensor:
        stride, padding, dilation, groups = conv_args
        k, width = len(weights), x.shape[1] // (len(weights) + 1)
        splits = torch.split(x, width, dim=1)
        last = F.avg_pool2d(splits[-1], 3, stride, 1) if pool_last else splits[-1]
        out = torch.empty((x.shape[0], x.shape[1], *last.shape[2:]), dtype=x.dtype, device=x.device,
                          memory_format=torch.channels_last if is_channels_last(x) else torch.contiguous_format)
        y = None
        for i, (w, scale, shift) in enumerate(zip(weights, scales, shifts)):
            sp = splits[i] if (y is None or not hierarchical) else splits[i] + y
            z = F.conv2d(sp, w * scale.view(-1, 1, 1, 1), shift, stride, padding, dilation, groups)
            y = out[:, i * width:(i + 1) * width]
            torch.clamp_min(z, 0, out=y)
        out[:, k * width:].copy_(last)
        ctx.save_for_backward(x, out, *scales, *weights)
        ctx.settings = (pool_last, hierarchical, conv_args, k, width)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, out, *rest = ctx.saved_tensors
        pool_last, hierarchical, (stride, padding, dilation, groups), k, width = ctx.settings
        scales, weights = rest[:k], rest[k:]
        splits = torch.split(x, width, dim=1)
        grad_x = torch.empty_like(x) if ctx.needs_input_grad[0] else None  # every slice is written below
        grad_weights: List[Optional[torch.Tensor]] = [None] * k
        carry = None  # gradient reaching split i's output through split i+1's sum
        for i in reversed(range(k)):
            y = out[:, i * width:(i + 1) * width]
            grad_y = grad_out[:, i * width:(i + 1) * width]
            if carry is not None:
                grad_y = grad_y + carry
            grad_z = grad_y * (y > 0)
            previous = out[:, (i - 1) * width:i * width] if (hierarchical and i > 0) else None
            sp = splits[i] if previous is None else splits[i] + previous
            need_input = ctx.needs_input_grad[0]
            need_weight = ctx.needs_input_grad[6 + i]
            scale = scales[i].view(-1, 1, 1, 1)
            grad_sp, grad_w, _ = torch.ops.aten.convolution_backward(
                grad_z, sp, weights[i] * scale, None, stride, padding, dilation, False, [0, 0], groups,
                [need_input or previous is not None, need_weight, False])
            if need_weight:
                grad_weights[i] = grad_w * scale
            if need_input:
                grad_x[:, i * width:(i + 1) * width] = grad_sp
            carry = grad_sp if previous is not None else None
        if grad_x is not None:
            grad_last = grad_out[:, k * width:]
            if pool_last:
                grad_last = torch.ops.aten.avg_pool2d_backward(
                    grad_last, splits[-1], [3, 3], [stride[0], stride[1]], [1, 1], False, True, None)
            grad_x[:, k * width:] = grad_last
        return (grad_x, None, None, None, None, None, *grad_weights)
