"""Analytic models of the links: expected click rates, QBERs, CHSH S and secret key rates.

The physics simulation (``sim_backends.physics``) is validated against these formulas.
"""
