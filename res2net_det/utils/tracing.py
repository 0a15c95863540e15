"""Whether a model runs eagerly or is being recorded into a graph."""
import torch

__all__ = ["is_tracing_or_exporting"]


def is_tracing_or_exporting() -> bool:
    """True while ``torch.jit.trace``, the ONNX exporter or ``torch.export`` records the model: Python
    branches on sizes or values would be fixed to the example input's there, and eager-only fast
    paths (custom autograd functions, in-place writes into slices) have no place in the graph."""
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting()
