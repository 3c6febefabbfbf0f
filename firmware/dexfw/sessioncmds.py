# The host's SET_MODE and HELLO, answered for a Firmware (dexfw.loop dispatches to them:
# rare commands, kept out of the loop's class).
from dexfw.applyonce import SLOT_MODE
from dexfw import replies
from dexproto import catalog as C
from dexproto.frame import HEADER_SIZE as BODY  # a received body starts here


def set_mode(fw, seq):
    """SET_MODE: refused out of range, on an unconfigured board (but IDLE), or while the
    hand's position is not known yet; a retried one is acknowledged, not applied again."""
    link = fw.link
    mode = link.payload[BODY]
    if mode >= len(C.MODE_NAMES):
        link.nack(C.SET_MODE, seq, C.ERR_BAD_VALUE, 0)
    elif fw.config_error is not None and mode != C.MODE_IDLE:
        link.nack(C.SET_MODE, seq, C.ERR_BAD_MODE, 0)
    elif fw.once.repeated(SLOT_MODE, seq):
        link.ack(C.SET_MODE, seq)
    elif not fw.set_mode(mode):
        link.nack(C.SET_MODE, seq, C.ERR_BUSY, 0)
    else:
        fw.once.remember(SLOT_MODE, seq)
        link.ack(C.SET_MODE, seq)


def hello(fw, seq):
    """HELLO: the board's HELLO_REPLY, or a NACK naming its major version."""
    link = fw.link
    major = link.payload[BODY]
    if major != C.PROTOCOL_MAJOR:
        # NACK.field carries the board's major version: the host can name both.
        link.nack(C.HELLO, seq, C.ERR_VERSION, C.PROTOCOL_MAJOR)
        return
    fw.once.forget()
    replies.send_hello_reply(fw)
