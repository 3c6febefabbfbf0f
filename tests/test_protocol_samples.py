"""The shared message samples (tests/support/protocol_samples.py) cover every type and fit."""
from __future__ import annotations

import struct

from hypothesis import given, settings

from dexproto import catalog, stream
from support.protocol_samples import fixed_messages, messages


def test_fixed_messages_cover_every_type_and_fit():
    msgs = fixed_messages()
    assert {m.name for m in msgs} == set(stream.SPECS_BY_NAME)
    sizes = [len(stream.encode_payload(m)) for m in msgs]
    assert max(sizes) <= catalog.MAX_PAYLOAD
    # The largest TELEMETRY and LOG fill the payload to within one item.
    assert catalog.MAX_PAYLOAD - max(sizes) < struct.calcsize("<hhhB")


@settings(deadline=None)
@given(messages())
def test_drawn_messages_encode(msg):
    assert len(stream.encode_payload(msg)) <= catalog.MAX_PAYLOAD
