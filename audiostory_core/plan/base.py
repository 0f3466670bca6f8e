"""The planner seam: ``Planner.plan(request) -> Plan``.

Planners may subclass ``Planner`` to inherit ``planner_for_mode``; a planner that hands requests on to others
(``plan.auto.AutoPlanner``) overrides it, so the pipeline can say which planner really runs.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..request import StoryRequest
from .types import Plan


@runtime_checkable
class Planner(Protocol):
    name: str

    def plan(self, request: StoryRequest) -> Plan: ...

    def planner_for_mode(self, mode: str) -> Planner:
        """The planner that plans requests of ``mode`` ("video", "text", "continuation"): itself, by default."""
        return self
