"""pyvisa-sim instrument models (YAML, shipped as package data): use "<path>.yaml@sim" as visa_library."""
