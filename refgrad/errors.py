"""The errors refgrad raises: each names the tensor, operation, shape or point at fault."""

from __future__ import annotations


class RefgradError(Exception):
    """Base class: every error refgrad raises on purpose derives from it."""


class TraceError(RefgradError, TypeError):
    """`fn` did something that cannot be traced (a numpy call, a Python branch on a value)."""


class ShapeError(RefgradError, ValueError):
    """Shapes that do not fit an operation, or a candidate that does not match the params."""


class InputError(RefgradError, ValueError):
    """Bad params/data/candidate values: NaN/Inf, wrong keys, unsupported dtypes."""


class DomainError(RefgradError, ValueError):
    """A primitive evaluated outside its domain at the point (log of 0, division by 0)."""


class PrecisionError(RefgradError, ArithmeticError):
    """The requested digits could not be certified within the precision cap."""


class KinkError(RefgradError, ValueError):
    """The point sits exactly on a kink and the caller asked for that to be an error."""
