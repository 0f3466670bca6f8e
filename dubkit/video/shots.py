"""Frame-accurate hard cuts, fed one frame at a time from the single decoding pass.

PySceneDetect's ``ContentDetector`` scores each frame (HSV change from the previous one) and proposes cuts; its
filter (SUPPRESS mode) keeps shots at least ``min_shot_frames`` long. A length rule cannot tell a flash from a
cut, so lightning or a camera flash — the picture turns white for a few frames and comes back — reads as a cut. We confirm each proposed cut only once the
following frames have *stayed* different from the frame before it: if the picture returns to what it was within
``flash_frames``, it was a flash, not a cut. And a pan is not a cut: a candidate whose change the camera's own
motion explains is vetoed (``cut_veto.py``) before the minimum shot length is applied, so a vetoed pan never
hides a true cut that follows it.
"""
from __future__ import annotations

from collections import deque

import cv2
import numpy as np
from scenedetect import ContentDetector, FrameTimecode
from scenedetect.detector import FlashFilter

from .cut_veto import camera_explains


def hsv_distance(a: np.ndarray, b: np.ndarray) -> float:
    """ContentDetector's frame score between two HSV images: mean absolute H, S and V difference (0..255)."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


class CutDetector:
    """Push frames in order with ``push(index, rgb)``; confirmed cuts (first frame of each new shot) collect in
    ``cuts``, rejected ones (flashes) in ``flashes``. A cut is final at most ``lag`` frames after it happened."""

    def __init__(self, fps: float, *, threshold: float = 27.0, min_shot_frames: int = 8, flash_frames: int | None = None):
        self.fps = float(fps) if fps > 0 else 24.0
        self.threshold = threshold
        self.flash_frames = flash_frames if flash_frames is not None else max(min_shot_frames, 6)
        # Every frame over the threshold, as it comes (SUPPRESS is never late); the minimum length is ours to apply,
        # after the camera veto (SUPPRESS semantics: a candidate counts once it is that far past the last one).
        self.min_shot_frames = min_shot_frames
        self._detector = ContentDetector(threshold=threshold, min_scene_len=0, filter_mode=FlashFilter.Mode.SUPPRESS)
        self._last_candidate = 0
        self._recent: deque[tuple[int, np.ndarray]] = deque(maxlen=self._detector.event_buffer_length + 2)
        self._pending: list[tuple[int, np.ndarray]] = []  # (cut frame, HSV of the frame before it)
        self._flash_refs: list[tuple[int, np.ndarray]] = []  # recent flashes and the picture before each
        self._last_index = -1
        self.cuts: list[int] = []
        self.cut_set: set[int] = set()  # the same, for constant-time "is frame i a cut?"
        self.flashes: list[int] = []
        self.vetoed: list[int] = []  # candidates the camera's motion explained (pans, whip pans)

    @property
    def lag(self) -> int:
        """How many frames behind the newest pushed frame a cut can still be confirmed or rejected."""
        return self._detector.event_buffer_length + self.flash_frames + 1

    def push(self, index: int, rgb: np.ndarray) -> None:
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV)
        for tc in self._detector.process_frame(FrameTimecode(index, self.fps), bgr):
            cut = tc.frame_num
            if cut - self._last_candidate < self.min_shot_frames or self._camera_moved(cut, index, hsv):
                continue
            self._last_candidate = cut
            if any(0 < cut - p <= self.flash_frames for p, _ in self._pending):
                continue  # the tail of a change still being judged: that judgement covers it
            # In the tail of a flash (a bright frame fading over several), compare with the picture before the flash.
            tail = next((ref for f, ref in reversed(self._flash_refs) if 0 < cut - f <= self.flash_frames), None)
            before = tail if tail is not None else next((h for i, h in self._recent if i == cut - 1), None)
            if before is not None and cut > 0:
                self._pending.append((cut, before))
        self._resolve(index, hsv)
        self._recent.append((index, hsv))
        self._last_index = index

    def _camera_moved(self, cut: int, index: int, hsv: np.ndarray) -> bool:
        """Veto (and note) a candidate whose change from the frame before is the camera moving."""
        before = next((h for i, h in self._recent if i == cut - 1), None)
        after = hsv if cut == index else next((h for i, h in self._recent if i == cut), None)
        if before is None or after is None or not camera_explains(before, after):
            return False
        self.vetoed.append(cut)
        return True

    def _resolve(self, index: int, hsv: np.ndarray | None) -> None:
        keep = []
        for cut, before in self._pending:
            if hsv is not None and index >= cut and hsv_distance(hsv, before) < self.threshold / 2:
                self.flashes.append(cut)  # back to the old picture: a flash, not a cut
                self._flash_refs = [*self._flash_refs[-3:], (cut, before)]
            elif hsv is None or index >= cut + self.flash_frames:
                self.cuts.append(cut)
                self.cut_set.add(cut)
            else:
                keep.append((cut, before))
        self._pending = keep

    def finish(self) -> list[int]:
        """Flush: cuts still waiting at the end of the video are kept (the picture never came back)."""
        for tc in self._detector.post_process(FrameTimecode(max(self._last_index, 0), self.fps)):
            if tc.frame_num > 0:
                self.cuts.append(tc.frame_num)
                self.cut_set.add(tc.frame_num)
        self._resolve(self._last_index + 1, None)
        self.cuts = sorted(set(self.cuts))
        return self.cuts
