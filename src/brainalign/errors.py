"""The user-error base class.

An error a user causes (a config key, an input file, the data in it) is a
:class:`UserInputError`: its message names the key or the file, and a workflow job
reports it in one line, without a traceback (:func:`brainalign.runlog.job`). Any
other exception is a bug in brainalign and keeps its traceback.

This module imports nothing from brainalign.
"""


class UserInputError(ValueError):
    """Bad input from the user; the message names the config key or the file."""


def exit_with_error(message) -> None:
    """Report a user error in one line on stderr (``brainalign: error: ...``) and exit 1,
    without a traceback: how the workflow stops on a bad config."""
    import sys

    print(f"brainalign: error: {message}", file=sys.stderr)
    sys.exit(1)
