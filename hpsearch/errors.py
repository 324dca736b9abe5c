"""The one exception family hpsearch raises for problems a user can fix.

The CLI turns any `HpsearchError` into one line on stderr and its `exit_code`: 2 for
input that cannot be honoured, 1 for a run that failed though its input was fine (its
database deleted under it); anything else escaping is a bug in hpsearch, not in the
user's input.
"""


class HpsearchError(Exception):
    """Base of every error whose message tells the user what to change."""

    exit_code = 2  # the CLI's exit code: like argparse's for a usage error


class DataError(HpsearchError, ValueError):
    """A data set name, file or split argument that cannot be honoured."""


class ConfigError(HpsearchError, ValueError):
    """A model, optimizer or training setting outside what is supported."""


class StudyError(HpsearchError):
    """A study that cannot be created, continued, read or evaluated as asked."""
