"""Evaluation: number backends, the forward pass, and precision certification."""
