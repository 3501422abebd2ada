"""Simulated time tagger."""
