# What the Feetech and Dynamixel buses share: goals every call, read-back spread over calls.
#
# poll() never waits. It collects whatever answers have arrived since the last call,
# and once the outstanding request is answered (or has waited `timeout_polls` calls) it
# sends the next request, for the next `read_group` servos. A servo that stays silent
# or answers with a bad checksum is counted and flagged in its joint's status, and asked
# again on its next turn. Call write_goals() before poll() in a cycle: the request sent
# by poll() is then answered long before the next goals are written on the shared wire.
#
# Setup (in __init__, before the loop) may wait: it reads registers back one servo at a
# time, on the board clock, and writes EEPROM only where a value differs (EEPROM wears,
# and setup runs at every boot).
import array

from dexfw.compat import const
from dexproto.catalog import COUNTER_MASK, ST_SERVO_BAD_CHECKSUM, ST_SERVO_ERROR, ST_SERVO_TIMEOUT
from dexproto.cobsbuf import copy_into

SERVO_BITS = ST_SERVO_TIMEOUT | ST_SERVO_BAD_CHECKSUM | ST_SERVO_ERROR
KEEP_BITS = 0xFF ^ SERVO_BITS
_NO_SERVO = const(0xFF)
_CHUNK = const(64)
_SETUP_WAIT_US = const(5000)  # an answer comes within 1 ms at 1 Mbaud, return delay included


class ServoBus:
    """What a protocol subclass gives:
    - packets: write_goals, _send_request, _torque_on / _torque_off (made in __init__),
      and for setup _read1_packet / _write1_packets (one register byte of one servo);
    - framing: MIN_PACKET, _size_at (the size of a packet starting at p, 0 if none does),
      _check (its checksum), _status_id (the servo that sent the status packet at p, -1
      if it is not one), _packet (book one packet in the steady state);
    - sizes of a status packet: READ1_SIZE (answer to a one-byte read), WRITE_ANSWER_SIZE,
      DATA_AT (offset of its first data byte).
    """

    NEEDS_CLOCK = True  # setup waits for answers on the board clock

    def __init__(self, uart, ids, joints, model, table, read_group, timeout_polls, rx_size,
                 name, clock):
        # table: the vendor's register table module (feetech_table, dynamixel_table).
        if model not in table.RESOLUTION:
            raise ValueError("%s: unknown model %r (known: %s)"
                             % (name, model, ", ".join(sorted(table.RESOLUTION))))
        self.counts_per_turn = table.RESOLUTION[model]
        self.centre = self.counts_per_turn // 2
        self.top = self.counts_per_turn - 1
        if clock is None:
            raise ValueError("%s: needs clock= (the HAL) to wait for the servos' answers at setup"
                             % name)
        self.clock = clock
        self.uart = uart
        self.ids = tuple(ids)
        self.joints = tuple(joints)
        self.n = n = len(self.ids)
        if n != len(self.joints) or n == 0:
            raise ValueError("%s: 'ids' (%d) and joints (%d) must pair one to one"
                             % (name, n, len(self.joints)))
        self._index_of = bytearray(b"\xff" * 256)  # servo id -> index in ids
        for k in range(n):
            if not 0 <= self.ids[k] <= table.MAX_ID or self._index_of[self.ids[k]] != _NO_SERVO:
                raise ValueError("%s: servo id %r is invalid or repeated" % (name, self.ids[k]))
            self._index_of[self.ids[k]] = k
        if not 1 <= read_group <= n:
            raise ValueError("%s: read_group must be 1..%d" % (name, n))
        self.read_group = read_group
        self.timeout_polls = timeout_polls
        self.timeouts = 0  # requests a servo did not answer, since boot
        self.bad_checksums = 0  # answers that failed their checksum, since boot
        self.load = array.array("h", [0] * n)  # last load / current read, servo units
        self._rx = bytearray(rx_size)
        self._rx_size = rx_size
        self._rxn = 0
        self._chunk = bytearray(_CHUNK)
        self._awaited = bytearray(n)  # 1: an answer from servo k is due
        self._n_awaited = 0
        self._age = 0  # polls since the request went out
        self._next = 0  # first servo of the next request
        self._present_out = None  # _parse's outputs while it runs
        self._status_out = None

    def torque(self, on):
        """Torque on or off for every servo of the bus."""
        self.uart.write(self._torque_on if on else self._torque_off)

    def poll(self, present_cdeg, status):
        """Collect answers that arrived; when the request is done, send the next one."""
        if not self._rxn:
            # The usual case, the buffer empty: the bytes go straight in, what is there
            # (the HAL's UART has timeout 0), without asking any() first (no copy, and
            # the calls of _receive's loop and any()'s saved: issue 15's per-call costs).
            self._rxn = self.uart.readinto(self._rx, self._rx_size) or 0
        else:
            self._receive_more(self.uart.any())
        if self._rxn:
            self._parse(present_cdeg, status)
        if self._n_awaited:
            self._age += 1
            if self._age < self.timeout_polls:
                return
            self._expire(status)
        self._request()

    def _receive(self):
        self._receive_more(self.uart.any())

    def _receive_more(self, waiting):
        # Bytes behind those in _rx go through a small chunk: a memoryview at an offset
        # into _rx would be a new object every call.
        while waiting > 0:
            room = len(self._rx) - self._rxn
            if room == 0:  # garbage filled the buffer: start over
                self._rxn = 0
                room = len(self._rx)
            got = self.uart.readinto(self._chunk, min(waiting, _CHUNK, room))
            if not got:
                return
            self._rxn = copy_into(self._chunk, 0, got, self._rx, self._rxn)
            waiting -= got

    # ---- setup (waits) -------------------------------------------------------------
    def _setup_exchange(self, request, servo_id, answer_size):
        """Send request to one servo and wait up to _SETUP_WAIT_US for its status packet of
        answer_size bytes; its offset in the receive buffer, or -1 when none came."""
        self._receive()  # stale bytes (late answers, echoes) are not this answer
        self._rxn = 0
        self.uart.write(request)
        clock = self.clock
        start = clock.ticks_us()
        while True:
            self._receive()
            p = self._find_status(servo_id, answer_size)
            if p >= 0 or clock.ticks_diff(clock.ticks_us(), start) > _SETUP_WAIT_US:
                return p
            clock.sleep_us(100)

    def _set_eeprom_byte(self, addr, value):
        """Make one EEPROM register byte `value` on every servo, writing only the servos
        that hold another value. A servo that does not answer is left alone: poll() will
        flag it. Returns how many servos were written."""
        written = 0
        for servo_id in self.ids:
            p = self._setup_exchange(self._read1_packet(servo_id, addr), servo_id,
                                     self.READ1_SIZE)
            if p >= 0 and self._rx[p + self.DATA_AT] != value:
                for request in self._write1_packets(servo_id, addr, value):
                    self._setup_exchange(request, servo_id, self.WRITE_ANSWER_SIZE)
                written += 1
        self._rxn = 0
        return written

    # ---- receive buffer ------------------------------------------------------------
    def _parse(self, present_cdeg, status):
        """Book every whole packet in the receive buffer; keep a partial one for later."""
        # The outputs stay on self while parsing: the per-packet methods then take fewer
        # arguments, which keeps their frames on the stack (tests/test_vrig_frames.py).
        self._present_out = present_cdeg
        self._status_out = status
        p = 0
        while self._rxn - p >= self.MIN_PACKET:
            size = self._size_at(self._rx, p)
            if size == 0:
                p += 1  # no packet starts here: resynchronise byte by byte
                continue
            if self._rxn - p < size:
                break  # the rest has not arrived yet
            self._packet(self._rx, p, size)
            p += size
        if p:
            self._consume(p)

    def _find_status(self, servo_id, size):
        """Offset of a good status packet of `size` bytes from servo_id in the receive
        buffer, or -1. (An echo of our own request has another size.)"""
        rx = self._rx
        for p in range(self._rxn - size + 1):
            if self._size_at(rx, p) == size and self._status_id(rx, p) == servo_id \
                    and self._check(rx, p, size):
                return p
        return -1

    def _consume(self, n):
        """Drop the first n bytes of the receive buffer."""
        self._rxn = copy_into(self._rx, n, self._rxn, self._rx, 0)

    def _expire(self, status):
        for k in range(self.n):
            if self._awaited[k]:
                self._awaited[k] = 0
                self.timeouts = (self.timeouts + 1) & COUNTER_MASK
                j = self.joints[k]
                status[j] = (status[j] & KEEP_BITS) | ST_SERVO_TIMEOUT
        self._n_awaited = 0
        self._rxn = 0  # a late half answer would only confuse the next one

    def _request(self):
        first = self._next
        count = self.read_group
        if count == 1:  # the usual group: no loop (21 bytecodes fewer a poll)
            self._awaited[first] = 1
        else:
            for i in range(count):
                k = first + i
                if k >= self.n:
                    k -= self.n
                self._awaited[k] = 1
        self._n_awaited = count
        self._age = 0
        nxt = first + count
        self._next = nxt - self.n if nxt >= self.n else nxt
        self._send_request(first, count)

    def _fill_ids(self, buf, at, first, count):
        """The ids of `count` servos from index `first` on (round the bus) into buf[at:]."""
        while count:  # a while loop: a for over range() takes 3 more slots of frame
            buf[at] = self.ids[first]
            at += 1
            count -= 1
            first += 1
            if first >= self.n:
                first = 0

    def _answered(self, servo_id, ok, error):
        """Book one answer (in _parse's status); return the servo's index, or -1 when
        none was awaited from it."""
        status = self._status_out
        k = self._index_of[servo_id]
        if k == _NO_SERVO or not self._awaited[k]:
            return -1
        self._awaited[k] = 0
        self._n_awaited -= 1
        j = self.joints[k]
        if not ok:
            self.bad_checksums = (self.bad_checksums + 1) & COUNTER_MASK
            status[j] = (status[j] & KEEP_BITS) | ST_SERVO_BAD_CHECKSUM
            return -1
        status[j] = (status[j] & KEEP_BITS) | (ST_SERVO_ERROR if error else 0)
        return k


def counts_from_cdeg(cdeg, centre, counts_per_turn, top):
    """Servo counts for an angle in cdeg from the servo centre, rounded, clipped to 0..top."""
    c = centre + (cdeg * counts_per_turn + 18000) // 36000
    if c < 0:
        return 0
    return top if c > top else c


def cdeg_from_counts(counts, centre, counts_per_turn):
    """Angle in cdeg from the servo centre for a position in counts, rounded."""
    return ((counts - centre) * 36000 + counts_per_turn // 2) // counts_per_turn
