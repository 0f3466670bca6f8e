"""AudioStory core: requests, plans, renderers and long-form assembly. Needs no video and never imports dubkit.

Names are imported on first use, so ``import audiostory_core.errors`` (which every CLI start needs) stays cheap.
"""
from importlib import import_module

_EXPORTS = {
    "AudioStoryPipeline": "pipeline",
    "CheckpointError": "errors", "DubkitError": "errors", "PlanError": "errors", "RenderError": "errors",
    "Clip": "render", "Renderer": "render",
    "Cue": "request", "Scene": "request", "StoryRequest": "request",
    "LAYERS": "plan", "Plan": "plan", "Planner": "plan", "SubEvent": "plan",
    "Soundtrack": "assemble", "assign_tails": "assemble",
}
# (``assemble`` the function is not re-exported: the package attribute of that name is the submodule.)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'audiostory_core' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
