"""refgrad: the exact gradient of your loss, and whether your own gradient is right.

    import refgrad as rg
    def loss(p, d):
        return rg.losses.mse_rows(p["X"], d["T"])
    ref = rg.reference(loss, params, data, digits=30)

The namespace holds the public verbs and the numpy-like operations losses are written with.
"""

from refgrad import losses, models, nn, testing
from refgrad.differentiate.finite_difference import finite_difference
from refgrad.errors import (
    DomainError,
    InputError,
    KinkError,
    PrecisionError,
    RefgradError,
    ShapeError,
    TraceError,
)
from refgrad.reference import Reference, reference
from refgrad.report.fixtures import Fixture, fixture, load_fixture
from refgrad.score.certify import Certificate, certify
from refgrad.score.diagnose import check
from refgrad.score.report import Report
from refgrad.score.sweep import Sweep, sweep
from refgrad.trace import Tensor, trace
from refgrad.trace.ops import (
    abs,
    add,
    broadcast_to,
    concatenate,
    divide,
    exp,
    getitem,
    log,
    log1p,
    log_softmax,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    minimum,
    multiply,
    negative,
    pad,
    power,
    relu,
    reshape,
    sigmoid,
    softmax,
    softplus,
    sqrt,
    square,
    stack,
    stop_gradient,
    subtract,
    sum,
    tanh,
    transpose,
)

__version__ = "0.1.0"

__all__ = [
    "DomainError", "InputError", "KinkError", "PrecisionError", "RefgradError", "ShapeError",
    "TraceError", "Reference", "reference", "Tensor", "trace", "check", "Report",
    "finite_difference", "sweep", "Sweep", "nn", "losses", "models", "testing",
    "certify", "Certificate", "fixture", "load_fixture", "Fixture",
    "abs", "add", "broadcast_to", "concatenate", "divide", "exp", "getitem", "log", "log1p",
    "log_softmax", "logsumexp", "matmul", "max", "maximum", "mean", "minimum", "multiply",
    "negative", "pad", "power", "relu", "reshape", "sigmoid", "softmax", "softplus", "sqrt",
    "square", "stack", "stop_gradient", "subtract", "sum", "tanh", "transpose",
]
