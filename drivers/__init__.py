"""Instrument layer of qkdnode: async interfaces per instrument kind, transports, real drivers.

Data flows one way: this package never imports `qkdnode` or `sim_backends`.
"""
