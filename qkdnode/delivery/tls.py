"""Mutual TLS for the key delivery API: server context and the caller's SAE identity."""

from __future__ import annotations

import ssl
from typing import Any

from qkdnode.delivery.config import TlsSection


def server_ssl_context(tls: TlsSection) -> ssl.SSLContext:
    """TLS >= 1.2 server context that requires a client certificate signed by `tls.client_ca`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=str(tls.cert), keyfile=str(tls.key))
    context.load_verify_locations(cafile=str(tls.client_ca))
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def common_name(peercert: dict[str, Any] | None) -> str | None:
    """The single subject CN of a verified peer certificate (`SSLSocket.getpeercert()` form).

    None when there is no certificate, no CN, or more than one CN (ambiguous identity).
    """
    if not peercert:
        return None
    names = [value for rdn in peercert.get("subject", ()) for key, value in rdn if key == "commonName"]
    return names[0] if len(names) == 1 else None
