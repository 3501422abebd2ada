"""Drivers for Toptica instruments."""
