"""`python -m dexlink ...`: the same command line as the `dexlink` script."""
import sys

from dexlink.cli import main

if __name__ == "__main__":
    sys.exit(main())
