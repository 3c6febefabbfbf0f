"""dexproto: the dexlink wire protocol, shared by the board firmware and the host.

The catalog (message types and layouts) and the board-side framing run on both
CPython and MicroPython; `dexproto.stream` is the host's fast decoder (CPython only).
"""
from dexproto.catalog import PROTOCOL_MAJOR, PROTOCOL_MINOR  # noqa: F401

__version__ = "%d.%d" % (PROTOCOL_MAJOR, PROTOCOL_MINOR)
