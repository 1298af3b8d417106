"""The tracer tensor: Python operators bound to refgrad primitives.

It refuses what cannot be traced — a Python branch on its value, a numpy function applied to
it, a float() of it — with an error that names the operation and says what to use instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refgrad.errors import TraceError

# numpy ufuncs that Python operators route here (ndarray + Tensor) and their refgrad op
_OPERATOR_UFUNCS = {
    "add": "add",
    "subtract": "subtract",
    "multiply": "multiply",
    "true_divide": "divide",
    "divide": "divide",
    "power": "power",
    "matmul": "matmul",
    "negative": "negative",
}
_SUGGEST = {
    "sum": "rg.sum", "mean": "rg.mean", "max": "rg.max", "amax": "rg.max", "dot": "rg.matmul or @",
    "maximum": "rg.maximum", "minimum": "rg.minimum", "clip": "rg.maximum/rg.minimum",
    "where": "rg.maximum/rg.relu or arithmetic with a mask", "concatenate": "rg.concatenate",
    "stack": "rg.stack", "reshape": "rg.reshape", "transpose": "rg.transpose",
}


def _ops():
    from refgrad.trace import ops

    return ops


class Tensor:
    """A traced array: shape is known, values are not (they live in the backends)."""

    __slots__ = ("node", "tracer")
    __array_priority__ = 1000

    def __init__(self, node: Any, tracer: Any):
        self.node = node
        self.tracer = tracer

    # -- metadata ----------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.node.shape

    @property
    def ndim(self) -> int:
        return len(self.node.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.node.shape, dtype=np.int64))

    def __len__(self) -> int:
        if not self.shape:
            raise TraceError("len() of a 0-d traced tensor")
        return self.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"<traced {self.node.describe()}>"

    # -- arithmetic --------------------------------------------------------------------------
    def __add__(self, o): return _ops().add(self, o)
    def __radd__(self, o): return _ops().add(o, self)
    def __sub__(self, o): return _ops().subtract(self, o)
    def __rsub__(self, o): return _ops().subtract(o, self)
    def __mul__(self, o): return _ops().multiply(self, o)
    def __rmul__(self, o): return _ops().multiply(o, self)
    def __truediv__(self, o): return _ops().divide(self, o)
    def __rtruediv__(self, o): return _ops().divide(o, self)
    def __matmul__(self, o): return _ops().matmul(self, o)
    def __rmatmul__(self, o): return _ops().matmul(o, self)
    def __pow__(self, o): return _ops().power(self, o)
    def __rpow__(self, o): return _ops().power(o, self)
    def __neg__(self): return _ops().negative(self)
    def __pos__(self): return self
    def __abs__(self): return _ops().abs(self)
    def __getitem__(self, index): return _ops().getitem(self, index)

    # -- methods in numpy's style ------------------------------------------------------------
    def sum(self, axis=None, keepdims=False): return _ops().sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return _ops().mean(self, axis, keepdims)
    def max(self, axis=None, keepdims=False): return _ops().max(self, axis, keepdims)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _ops().reshape(self, shape)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return _ops().transpose(self, axes or None)

    @property
    def T(self) -> Tensor:
        return _ops().transpose(self)

    # -- what cannot be traced ---------------------------------------------------------------
    def _refuse(self, what: str, instead: str) -> TraceError:
        return TraceError(f"{what} on a traced value ({self.node.describe()}) cannot be traced; {instead}")

    def __bool__(self):
        raise self._refuse(
            "a Python branch (if/while/and/or) ", "the branch would be frozen at trace time: use "
            "rg.relu, rg.maximum, rg.minimum or rg.abs to express the choice")

    def _compare(self, *_):
        raise self._refuse("a comparison (<, >, ==)", "use rg.relu, rg.maximum, rg.minimum or rg.abs")

    __lt__ = __le__ = __gt__ = __ge__ = _compare
    __hash__ = object.__hash__

    def __float__(self):
        raise self._refuse("float()", "keep the value traced and use refgrad operations")

    __int__ = __index__ = __complex__ = __float__

    def __array__(self, *_, **__):
        raise self._refuse("conversion to a numpy array", "use refgrad operations (rg.*) on it")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        name = _OPERATOR_UFUNCS.get(ufunc.__name__)
        if method == "__call__" and name and not kwargs:
            return getattr(_ops(), name)(*inputs)
        suggest = _SUGGEST.get(ufunc.__name__, f"rg.{ufunc.__name__}")
        raise self._refuse(f"numpy.{ufunc.__name__}", f"use {suggest} instead")

    def __array_function__(self, func, types, args, kwargs):
        suggest = _SUGGEST.get(func.__name__, f"rg.{func.__name__}")
        raise self._refuse(f"numpy.{func.__name__}", f"use {suggest} instead")
