"""The one error the data package raises for bad files on disk."""

from mcdm.errors import MCDMError


class DataError(MCDMError, ValueError):
    """A dataset file that is missing, corrupt or inconsistent; the message names the file."""
