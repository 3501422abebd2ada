"""Control loops a node runs on its instruments (interferometer phase lock, ...)."""
