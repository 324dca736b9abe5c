"""The one exception family hpsearch raises for problems a user can fix.

The CLI turns any `HpsearchError` into one line on stderr and exit code 2;
anything else escaping is a bug in hpsearch, not in the user's input.
"""


class HpsearchError(Exception):
    """Base of every error whose message tells the user what to change."""


class DataError(HpsearchError, ValueError):
    """A data set name, file or split argument that cannot be honoured."""


class ConfigError(HpsearchError, ValueError):
    """A model, optimizer or training setting outside what is supported."""


class StudyError(HpsearchError):
    """A study that cannot be created, continued, read or evaluated as asked."""
