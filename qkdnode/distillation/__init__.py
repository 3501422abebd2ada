"""Key distillation algorithms (sans-IO): parameter estimation, Cascade reconciliation,
verification, privacy amplification, finite-key length, and per-block sessions."""
