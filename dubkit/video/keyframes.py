"""Evenly spaced keyframes per shot from a single pass, in memory that does not grow with the shot's length.

While decoding we do not yet know how long the current shot will be, so we cannot pick "the frames at 1/6, 1/2
and 5/6 of the shot" in advance. A stride-doubling reservoir keeps every ``stride``-th frame; when it holds more
than ``capacity`` frames it doubles the stride and drops every other one. It therefore always holds an evenly
spaced subset of the shot (at most ``capacity`` frames), from which the final picks are made when the shot ends.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Container
from dataclasses import dataclass

import numpy as np


@dataclass
class _Held:
    offset: int  # frame offset inside the shot
    index: int  # frame index in the video
    time: float
    image: np.ndarray


class ShotReservoir:
    """Evenly spaced frames of one shot of unknown length, at most ``capacity`` of them at any time."""

    def __init__(self, capacity: int = 12):
        self.capacity = max(2, int(capacity))
        self.stride = 1
        self.seen = 0
        self.held: list[_Held] = []

    def add(self, index: int, time: float, image: np.ndarray) -> None:
        offset = self.seen
        self.seen += 1
        if offset % self.stride:
            return
        self.held.append(_Held(offset, index, time, image))
        if len(self.held) > self.capacity:
            self.stride *= 2
            self.held = [h for h in self.held if h.offset % self.stride == 0]

    def pick(self, k: int) -> list[_Held]:
        """The ``k`` held frames nearest to the centres of ``k`` equal parts of the shot, in time order."""
        if not self.held or k <= 0:
            return []
        offsets = np.array([h.offset for h in self.held])
        chosen: list[int] = []
        for j in range(k):
            target = (j + 0.5) * self.seen / k
            order = np.argsort(np.abs(offsets - target), kind="stable")
            pick = next((int(i) for i in order if int(i) not in chosen), None)
            if pick is not None:
                chosen.append(pick)
        return [self.held[i] for i in sorted(chosen)]


class KeyframeCollector:
    """Routes decoded frames into one reservoir per shot.

    Cuts are confirmed a few frames late (the cut detector needs to see what follows a cut), so frames wait in a
    short delay line of ``delay`` frames before they are assigned to a shot.
    """

    def __init__(self, per_shot: int, delay: int, capacity: int | None = None,
                 on_close: Callable[[list[tuple[int, float, np.ndarray]], int | None], None] | None = None):
        # Called as a shot closes, with its picks and the next shot's first frame (None: the video's end).
        self.on_close = on_close
        self.per_shot = per_shot
        self.capacity = capacity or max(8 * per_shot, 16)
        self.delay = max(0, delay)
        self._waiting: deque[tuple[int, float, np.ndarray]] = deque()
        self._current = ShotReservoir(self.capacity)
        self.shots: list[list[tuple[int, float, np.ndarray]]] = []

    def push(self, index: int, time: float, image: np.ndarray, cuts: Container[int]) -> None:
        """Add frame ``index``; ``cuts`` holds the cuts confirmed so far (first frames of new shots)."""
        self._waiting.append((index, time, image))
        self._release(index - self.delay, cuts)

    def finish(self, cuts: Container[int]) -> list[list[tuple[int, float, np.ndarray]]]:
        """Assign every waiting frame and close the last shot: one list of (index, time, image) per shot."""
        self._release(None, cuts)
        self._close(None)
        return self.shots

    @property
    def held_frames(self) -> int:
        return len(self._waiting) + len(self._current.held)

    def _release(self, upto: int | None, cuts: Container[int]) -> None:
        while self._waiting and (upto is None or self._waiting[0][0] <= upto):
            index, time, image = self._waiting.popleft()
            if index in cuts and self._current.seen:
                self._close(index)
            self._current.add(index, time, image)

    def _close(self, next_start: int | None) -> None:
        if self._current.seen:
            self.shots.append([(h.index, h.time, h.image) for h in self._current.pick(self.per_shot)])
            if self.on_close is not None:
                self.on_close(self.shots[-1], next_start)
        self._current = ShotReservoir(self.capacity)
