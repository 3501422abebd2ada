"""Sequence windows and session ids."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from qkdnode.channel.session import WINDOW, RxWindow, derive_session_id


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=300), max_size=200))
def test_only_seqs_above_every_accepted_one_pass_and_repeats_in_the_window_are_replays(seqs: list[int]) -> None:
    window, accepted = RxWindow(), []
    for seq in seqs:
        verdict = window.classify(seq)
        top = max(accepted, default=0)
        if seq > top:
            assert verdict is None
            window.accept(seq)
            accepted.append(seq)
        elif seq in accepted and top - seq <= WINDOW:
            assert verdict == "replay"
        else:
            assert verdict == "reordered"


def test_accept_reports_the_number_of_skipped_seqs() -> None:
    window = RxWindow()
    assert window.accept(1) == 0
    assert window.accept(5) == 3
    assert window.classify(3) == "reordered" and window.classify(1) == "replay"


def test_session_ids_depend_on_every_input() -> None:
    base = ("L", "alice", "bob", b"\x01" * 16, b"\x02" * 16)
    ids = {derive_session_id(*base)}
    for i, other in enumerate(("M", "carol", "dave", b"\x03" * 16, b"\x04" * 16)):
        changed = list(base)
        changed[i] = other
        ids.add(derive_session_id(*changed))
    assert len(ids) == 6 and all(len(s) == 16 for s in ids)
