from .base import Clip, Renderer, event_samples, event_seed

__all__ = ["Clip", "Renderer", "event_samples", "event_seed"]
