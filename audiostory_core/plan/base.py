"""The planner seam: ``Planner.plan(request) -> Plan``."""
from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..request import StoryRequest
from .types import Plan


@runtime_checkable
class Planner(Protocol):
    name: str

    def plan(self, request: StoryRequest) -> Plan: ...
