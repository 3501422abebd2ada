"""The distillation worker: sifted frames in from the node, final keys out to the key store."""
