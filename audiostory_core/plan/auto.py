"""``AutoPlanner``: one planner object for the pipeline that hands each request to the no-LLM planner of its mode."""
from __future__ import annotations

from ..errors import PlanError
from ..request import StoryRequest
from .base import Planner
from .scene_planner import ScenePlanner
from .text_planner import TextPlanner
from .types import Plan


class AutoPlanner(Planner):
    """Dispatches by ``request.mode``: video → ``scene`` (default ``ScenePlanner``), text → ``text`` (default
    ``TextPlanner``), continuation → ``continuation``.

    The continuation planner listens to a sound bank, so whoever builds the backends gives it
    (``ContinuationPlanner(BANK, synthesize)``; dubkit/backends.py does); without one, continuations are refused
    with a clear error rather than this module reaching up into the renderers' bank.
    """

    name = "auto"

    def __init__(
        self,
        *,
        scene: Planner | None = None,
        text: Planner | None = None,
        continuation: Planner | None = None,
    ) -> None:
        self.scene = scene or ScenePlanner()
        self.text = text or TextPlanner()
        self._continuation = continuation

    @property
    def continuation(self) -> Planner:
        if self._continuation is None:
            raise PlanError("this planner was built without a continuation planner (give AutoPlanner("
                            "continuation=ContinuationPlanner(bank, synthesize)))")
        return self._continuation

    def planner_for_mode(self, mode: str) -> Planner:
        """The planner a request of ``mode`` ("video", "text" or "continuation") goes to."""
        return {"video": self.scene, "text": self.text}.get(mode) or self.continuation

    def plan(self, request: StoryRequest) -> Plan:
        return self.planner_for_mode(request.mode).plan(request)
