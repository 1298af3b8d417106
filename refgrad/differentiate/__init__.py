"""Differentiation: reverse mode (exact chain rule) and Taylor-mode directional derivatives."""
