"""The virtual board's one error type."""


class VirtualBoardError(RuntimeError):
    """The virtual board could not start or do what was asked."""
