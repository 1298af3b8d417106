"""A finding: one thing the diagnosis noticed, with the numbers that justify it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Finding:
    """kind: scale, sign, transpose, permutation, zero, missing_path, wrong_local_derivative,
    index_shift, kink, truncation_free, nothing_fits, ...; tensor: the param name (or None for
    the whole gradient); evidence: the numbers (JSON-able); confidence in [0, 1]."""

    kind: str
    tensor: str | None
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    confidence: float = 1.0
    candidate: str = "analytic"  # which candidate it is about: analytic or numeric

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = f"[{self.tensor}] " if self.tensor else ""
        return f"{self.kind}: {where}{self.message}"
