"""Drivers for Lakeshore instruments."""
