"""ETSI GS QKD 014 key delivery API with mutual TLS, serving keys from the key store."""
