"""Drivers for Swabian instruments."""
