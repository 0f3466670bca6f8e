"""dubkit's errors: the core's ``DubkitError`` family plus the media-side cases a user can fix."""
from audiostory_core.errors import CheckpointError, DubkitError, PlanError, RenderError


class InputError(DubkitError):
    """An input file is missing, unreadable, not media, has no video stream, or is empty/truncated."""


class OutputError(DubkitError):
    """An output cannot be written (folder missing or not writable, same path as the input, ...)."""


class DiskFullError(OutputError):
    """The output's disk is full or over quota (ENOSPC/EDQUOT). Not the input's fault, so worth retrying once
    there is room: ``transient`` tells a watch folder to retry it rather than fail the input."""

    transient = True


class MediaToolError(DubkitError):
    """ffmpeg/ffprobe is missing or failed on a file that looked valid."""


__all__ = ["CheckpointError", "DiskFullError", "DubkitError", "InputError", "MediaToolError", "OutputError", "PlanError",
           "RenderError"]
