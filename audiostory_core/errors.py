"""One exception family for the whole project.

Every error a user can cause or fix is a ``DubkitError`` with a message that says what to do; the CLI prints
that one line and exits non-zero. It lives in the core (which never imports ``dubkit``) so both packages share it.
"""


class DubkitError(Exception):
    """Base of every user-facing error."""


class CheckpointError(DubkitError):
    """A model folder is missing files, or its files do not match the expected layout."""


class PlanError(DubkitError):
    """A request cannot be planned (e.g. a non-positive duration)."""


class RenderError(DubkitError):
    """A renderer cannot produce audio for a plan."""
