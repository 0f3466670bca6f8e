from .base import Planner
from .types import LAYERS, Plan, SubEvent

__all__ = ["LAYERS", "Plan", "Planner", "SubEvent"]
