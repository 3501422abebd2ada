"""Sessions: a handshake-derived id plus per-direction sequence numbers.

The connecting end (initiator) sends `hello(n_i)`; the binding end (responder) answers
`hello_ack(n_i, n_r)` with a fresh nonce; both derive
session_id = SHA-256("qkdnode-session-v1" | link | initiator | responder | n_i | n_r)[:16].
A replayed hello or ack cannot bind an old session because one nonce is always fresh.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from qkdnode.channel.envelope import SESSION_ID_BYTES

NONCE_BYTES = 16
WINDOW = 64


def derive_session_id(link_id: str, initiator: str, responder: str, n_i: bytes, n_r: bytes) -> bytes:
    """16-byte session id from the link, both roles and both handshake nonces."""
    h = hashlib.sha256(b"qkdnode-session-v1")
    for part in (link_id.encode(), initiator.encode(), responder.encode()):
        h.update(len(part).to_bytes(1, "big") + part)
    h.update(n_i + n_r)
    return h.digest()[:SESSION_ID_BYTES]


@dataclass
class RxWindow:
    """Receive-side sequence check: strictly increasing, with a 64-message memory.

    `last` is the highest accepted seq; bit i of `mask` says seq last-1-i was accepted,
    so a repeat inside the window is told apart ("replay") from an older, never-seen
    seq ("reordered"). Older than the window counts as "reordered".
    """

    last: int = 0
    mask: int = 0

    def classify(self, seq: int) -> str | None:
        """None if `seq` may be accepted, else the reject reason."""
        if seq > self.last:
            return None
        back = self.last - seq - 1
        if seq == self.last or (0 <= back < WINDOW and (self.mask >> back) & 1):
            return "replay"
        return "reordered"

    def accept(self, seq: int) -> int:
        """Record an authenticated `seq` (> last); return how many seqs were skipped."""
        step = seq - self.last
        self.mask = ((self.mask << step) | (1 << (step - 1))) & ((1 << WINDOW) - 1) if self.last else 0
        self.last = seq
        return step - 1


@dataclass
class Session:
    """One established (or pending) session: its id, the next tx seq and the rx window."""

    session_id: bytes
    tx_seq: int = 0
    rx: RxWindow = field(default_factory=RxWindow)

    def next_seq(self) -> int:
        self.tx_seq += 1
        return self.tx_seq

    @property
    def short_id(self) -> str:
        """First 8 hex digits of the (public) session id, for logs."""
        return self.session_id.hex()[:8]
