"""AudioStory core: requests, plans, renderers and long-form assembly. Needs no video and never imports dubkit."""
from .assemble import Soundtrack, assemble, assign_tails
from .errors import CheckpointError, DubkitError, PlanError, RenderError
from .pipeline import AudioStoryPipeline
from .plan import LAYERS, Plan, Planner, SubEvent
from .render import Clip, Renderer
from .request import Cue, Scene, StoryRequest

__all__ = [
    "AudioStoryPipeline", "CheckpointError", "Clip", "Cue", "DubkitError", "LAYERS", "Plan", "PlanError",
    "Planner", "RenderError", "Renderer", "Scene", "Soundtrack", "StoryRequest", "SubEvent", "assemble",
    "assign_tails",
]
