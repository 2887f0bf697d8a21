"""Errors a user can act on.

Anything raised as a :class:`YololabError` is printed by the CLI as one clear line (no stack trace)
and exits with status 2. Raise it for bad input: name the file, the line or the field, and what was
expected.
"""


class YololabError(Exception):
    """A problem with the user's input, explained in the message."""


class WeightsError(YololabError):
    """A weights file that cannot be read or does not fit the model."""


class ConfigError(YololabError):
    """A configuration (Darknet .cfg, data.yaml, ...) that is not valid."""


class DataError(YololabError):
    """A dataset, image or label that is not valid."""
