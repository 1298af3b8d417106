"""Presenting results: text and JSON reports, plots, fixtures."""
