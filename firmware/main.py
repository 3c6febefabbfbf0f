# Board boot file. The firmware owns the USB serial port while it runs (Ctrl-C is off:
# its frames may hold 0x03), so a board with /safeboot skips it: that is how mpremote
# reaches a board whose firmware cannot be stopped with the REPL message.
#
# The console is claimed first, before the safeboot check and before anything slow (the
# imports, the drivers' setup): a host already sending frames while the board boots must
# not interrupt it. Only the first opcodes can still take a Ctrl-C; one that comes then
# is swallowed (the firmware starts all the same). Ctrl-C is given back on every way out:
# safeboot, the REPL message, and a crash, whose traceback then ends at a usable REPL.
try:
    import micropython
    micropython.kbd_intr(-1)
    for _ in range(1):
        pass  # a backward jump: a Ctrl-C that beat the claim is raised here, in the try
except KeyboardInterrupt:
    pass  # the claim holds (kbd_intr(-1) ran before the VM raised the interrupt)
try:
    import os
    os.stat("/safeboot")
    micropython.kbd_intr(3)
except OSError:
    try:
        import dexfw.app
        dexfw.app.run()
    finally:
        micropython.kbd_intr(3)
