"""What a link raises: each message says what went wrong and what the user can do."""
from __future__ import annotations

from dexproto import catalog
from dexproto.stream import Message


class LinkError(Exception):
    """Something the user can act on: the message says what and how."""


class HandshakeError(LinkError):
    """The board did not answer HELLO as dexlink firmware of this protocol does."""


class RequestTimeout(LinkError):
    """No answer to a request, after every retry."""


class LinkDown(LinkError):
    """The port is closed or failed: nothing was sent."""


class NackError(LinkError):
    """The board refused a command; .error is the catalog's ERR_* code, .field the field."""

    def __init__(self, request: Message, error: int, field_index: int):
        self.request, self.error, self.field_index = request, error, field_index
        fields = request.spec.head_fields or request.spec.item_fields
        self.field = fields[field_index] if field_index < len(fields) else None
        reason = catalog.ERR_NAMES[error] if error < len(catalog.ERR_NAMES) else "error %d" % error
        where = " (field %s)" % self.field if self.field else ""
        super().__init__("the board refused %s: %s%s" % (request.name, reason, where))
