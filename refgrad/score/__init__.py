"""Scoring and diagnosis: precision baselines, finite-difference error model, verdicts, fingerprints."""
