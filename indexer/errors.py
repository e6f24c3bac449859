"""User-facing errors.

Every failure a user can cause or fix (a bad file, a missing model, a locked index) is a
:class:`DailiesError` carrying one sentence that says what is wrong and, where possible, what
to do. The CLI prints that sentence on one line and exits non-zero; tracebacks are for
``--debug`` only.
"""

from __future__ import annotations


class DailiesError(Exception):
    """An error with a sentence meant for the user."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class MediaError(DailiesError):
    """A media file cannot be read (empty, truncated, not media, no usable streams)."""


class IndexMissingError(DailiesError):
    """The index folder does not exist or is not a dailies index."""


class IndexLockedError(DailiesError):
    """Another process is writing the index."""


class IndexReadOnlyError(DailiesError):
    """A writer was asked for on an index folder this user may not write."""


class IndexVersionError(DailiesError):
    """The index was written by an incompatible version of dailies."""


class ModelError(DailiesError):
    """A model cannot be found or loaded."""


class NothingToExportError(DailiesError):
    """An export whose search or selection found nothing to write (the review room answers 404)."""


class NotFoundError(DailiesError):
    """What was asked for by name or id (a take, a review note) is not in the index (the review room answers 404)."""


class UsageError(DailiesError):
    """The command line asks for something that does not make sense."""
