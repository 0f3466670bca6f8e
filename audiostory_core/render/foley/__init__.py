"""The offline foley renderer: procedural synthesis plus the user's sound libraries, matched to captions by
sentence embeddings. Needs no neural audio weights (only the small MiniLM text encoder)."""
from .bank import BANK, SoundType, synthesize

__all__ = ["BANK", "SoundType", "synthesize", "FoleyRenderer", "SoundLibrary"]


def __getattr__(name: str):  # the renderer and library pull in the text encoder: import them lazily
    if name == "FoleyRenderer":
        from .renderer import FoleyRenderer

        return FoleyRenderer
    if name == "SoundLibrary":
        from .library import SoundLibrary

        return SoundLibrary
    raise AttributeError(name)
