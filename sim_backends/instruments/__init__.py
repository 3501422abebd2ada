"""Simulated instruments: emulators that speak each real instrument's command set."""
