# What MicroPython has built in and CPython lacks, for the board code that also runs on the
# host (the tests, the fuzzers, the traced frame check).
#
# const(): MicroPython's compiler folds `_NAME = const(value)` into every use of _NAME in
# the module (a leading underscore keeps the name out of the module's globals: no RAM),
# whichever module const was imported from. Under CPython it is the identity.
try:
    from micropython import const
except ImportError:
    def const(value):
        return value
