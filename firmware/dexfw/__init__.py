# dexfw: the dexlink firmware. Runs on MicroPython boards and, unchanged, on the virtual
# board (the MicroPython Unix port). dexfw.app.run() is the entry point main.py calls.
FW_VERSION = (0, 1, 0)
