"""Errors that are the user's to fix, as opposed to bugs.

A `UserError` (a missing, empty or malformed file, a wrong option) reaches the user as
one line, `dexlink COMMAND: message`, exit status 1, with no traceback: the message names
the file (and field) and what is wrong. Anything else escaping a command is a bug and
keeps its traceback.
"""


class UserError(Exception):
    """A mistake the user can fix; the message names the file or option and the problem."""


class FileFormatError(UserError, ValueError):
    """A file that exists but is not what it should be (empty, cut short, another format)."""


def error_text(e: Exception) -> str:
    """The one line to show for a user's error: 'FILE: what went wrong' for an OSError (its
    own text adds the errno and quotes), the message for anything else."""
    if isinstance(e, OSError) and e.filename is not None and e.strerror:
        return "%s: %s" % (e.filename, e.strerror)
    return str(e)
