"""The one table of primitives: elementwise ones defined by sympy, structural ones by exact VJPs."""

from refgrad.primitives import elementwise as _elementwise  # noqa: F401  (registers)
from refgrad.primitives import structural as _structural  # noqa: F401  (registers)
from refgrad.primitives.registry import REGISTRY, Elementwise, Structural, get

__all__ = ["REGISTRY", "Elementwise", "Structural", "get"]
