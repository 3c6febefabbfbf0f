# The loop's encoder drivers and servo buses as one object of each kind (Firmware picks
# them at init), so that cycle() calls a device with no loop: a hand with one of a kind
# has that driver called straight, with no loop over a one-element tuple (issue 15: its
# passes and setup, ~7 bytecodes). cycle() has no for loop at all: an iterator takes 4 of
# the 11 slots a frame has on the stack (past them MicroPython puts the frame on the heap,
# an allocation per call: tests/test_vrig_frames.py). Several of a kind are chained in
# pairs: two cost one call (what the cycle's step method cost before), n cost n - 1. The
# device's method is looked up at each call, as the loop over the tuple did.


class Pair:
    """Two devices (or a device and a Pair) called as one, first then rest."""

    def __init__(self, first, rest):
        self.first = first
        self.rest = rest

    def sample(self, raw, status):
        self.first.sample(raw, status)
        self.rest.sample(raw, status)

    def write_goals(self, goals):
        self.first.write_goals(goals)
        self.rest.write_goals(goals)

    def poll(self, present, status):
        self.first.poll(present, status)
        self.rest.poll(present, status)


class Nothing:
    """No device of the kind (an unconfigured board)."""

    def sample(self, raw, status):
        pass

    def write_goals(self, goals):
        pass

    def poll(self, present, status):
        pass


def one(devices):
    """The devices of a tuple as one object: the device itself when it is alone."""
    if not devices:
        return Nothing()
    if len(devices) == 1:
        return devices[0]
    return Pair(devices[0], one(devices[1:]))
