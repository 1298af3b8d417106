"""Tracing: run the user's `fn` once on tracer tensors to record the graph."""

from refgrad.trace.tensor import Tensor
from refgrad.trace.tracer import trace

__all__ = ["Tensor", "trace"]
