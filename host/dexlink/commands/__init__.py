"""One module per `dexlink` subcommand; each defines register(subparsers).

Modules are discovered, so adding a command is adding a file here.
"""
