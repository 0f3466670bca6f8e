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

    The continuation planner listens to a sound bank, which lives with the renderers, so whoever builds the
    backends gives it (``ContinuationPlanner(BANK, synthesize)`` over the foley bank); without one, continuation
    requests are refused with a message that says so.
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
        self.continuation = continuation

    def planner_for_mode(self, mode: str) -> Planner:
        """The planner a request of ``mode`` ("video", "text" or "continuation") goes to."""
        chosen = {"video": self.scene, "text": self.text, "continuation": self.continuation}.get(mode)
        if chosen is None:
            raise PlanError(f"this planner has no planner for {mode!r} requests; build it with "
                            "continuation=ContinuationPlanner(bank, synthesize) to continue audio")
        return chosen

    def plan(self, request: StoryRequest) -> Plan:
        return self.planner_for_mode(request.mode).plan(request)
