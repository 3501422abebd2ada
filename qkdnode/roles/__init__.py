"""Protocol roles a node daemon runs: time-bin BB84 Alice and Bob, DI-QKD atom nodes and station."""
