"""Errors that are the user's to fix, as opposed to bugs, and the exit statuses they give.

A `UserError` (a missing, empty or malformed file, a wrong option) reaches the user as
one line, `dexlink COMMAND: message`, with no traceback: the message names the file (and
field) and what is wrong. Anything else escaping a command is a bug and keeps its
traceback. `dexlink.cli.main` is the one place that turns them into exit statuses.
"""

EXIT_OK = 0
EXIT_FAILED = 1  # a user's error, or a command that could not do all it was asked
EXIT_USAGE = 2  # a wrong option; argparse's own status for the options it checks
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as a shell reports it


class UserError(Exception):
    """A mistake the user can fix; the message names the file or option and the problem."""

    exit_status = EXIT_FAILED


class UsageError(UserError):
    """An option value argparse cannot check itself (a non-positive --fps): status 2, like
    argparse's own refusals."""

    exit_status = EXIT_USAGE


class FileFormatError(UserError, ValueError):
    """A file that exists but is not what it should be (empty, cut short, another format)."""


def error_text(e: Exception) -> str:
    """The one line to show for a user's error: 'FILE: what went wrong' for an OSError (its
    own text adds the errno and quotes), the message for anything else."""
    if isinstance(e, OSError) and e.filename is not None and e.strerror:
        return "%s: %s" % (e.filename, e.strerror)
    return str(e)
