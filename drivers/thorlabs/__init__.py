"""Drivers for Thorlabs instruments."""
