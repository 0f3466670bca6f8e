"""dubkit: automatic soundtracks for video, text → long audio, and audio continuation.

    >>> import dubkit
    >>> result = dubkit.dub("cartoon.mp4")          # → cartoon.dubbed.mp4, offline on CPU
    >>> result.output, result.timings, result.backends
"""
__version__ = "0.1.0"

from .errors import DubkitError  # noqa: E402

# The API pulls in numpy/scipy/torch-adjacent modules; import it lazily so `dubkit --version` stays instant.
_LAZY = {
    "api": ("dub", "plan", "story", "continue_audio", "DubResult", "PlanResult", "AudioResult"),
    "options": ("ModelOptions", "CaptionOptions", "MusicOptions", "FinishingOptions"),
    "backends": ("Backends", "build_backends"),
}


def __getattr__(name: str):
    for module, names in _LAZY.items():
        if name in names:
            from importlib import import_module

            return getattr(import_module(f".{module}", __name__), name)
    raise AttributeError(name)


__all__ = ["DubkitError", "__version__", *(n for names in _LAZY.values() for n in names)]
