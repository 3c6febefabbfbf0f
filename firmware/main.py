# Board boot file. The firmware owns the USB serial port while it runs (Ctrl-C is off),
# so a board with /safeboot skips it: that is how mpremote reaches a running board.
try:
    import os
    os.stat("/safeboot")
except OSError:
    import dexfw.app
    dexfw.app.run()
