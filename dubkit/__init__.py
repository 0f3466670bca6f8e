"""dubkit: automatic soundtracks for video, text → long audio, and audio continuation.

    >>> import dubkit
    >>> result = dubkit.dub("cartoon.mp4")          # → cartoon.dubbed.mp4, offline on CPU
    >>> result.output, result.timings, result.backends
"""
__version__ = "0.1.0"

from .errors import DubkitError  # noqa: E402


def __getattr__(name: str):
    # The API pulls in numpy/scipy/torch-adjacent modules; import it lazily so `dubkit --version` stays instant.
    if name in {"dub", "plan", "story", "continue_audio", "DubResult", "PlanResult", "AudioResult"}:
        from . import api

        return getattr(api, name)
    raise AttributeError(name)


__all__ = ["AudioResult", "DubResult", "DubkitError", "PlanResult", "__version__", "continue_audio", "dub", "plan", "story"]
