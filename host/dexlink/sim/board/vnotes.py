# Notes from the interpreter (the agent and vconsole) to the supervisor that plays the
# board's USB side (dexlink.sim.supervisor): one table both sides read.
#
# A note is a record on its own pipe: type (1 byte, one of NOTE_*), text length (u16,
# little-endian), text. Notes are written whole (under PIPE_BUF) and never in the
# firmware's steady-state loop. Runs under MicroPython and CPython: constants only.
HEADER_SIZE = 3

NOTE_RUNNING = b"P"  # the interpreter runs a program (Ctrl-C may interrupt it)
NOTE_BANNER = b"N"  # text: the REPL's banner (nothing runs yet that Ctrl-C could stop)
NOTE_BOOTED = b"B"  # boot.py / main.py finished: the REPL takes over
NOTE_DONE = b"D"  # a REPL command finished; text: its traceback, if any
NOTE_CLAIM = b"C"  # the program owns the console: Ctrl-C is data; text: the claim's number
NOTE_RELEASE = b"R"  # Ctrl-C interrupts again
NOTE_HARD_RESET = b"H"  # machine.reset()
NOTE_SOFT_RESET = b"S"  # sys.exit() / machine.soft_reset()
