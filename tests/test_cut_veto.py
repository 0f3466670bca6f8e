"""A whip pan is not a cut; a hard cut is, to the frame — on a clip panned across real pictures from samples/real.

The clip: a camera still for 1 s on a street, then a whip pan (eased: a quarter of the frame width per frame on
average, 0.4 at its peak, smeared by motion blur) across three real pictures side by side, then the camera rests;
then a hard cut to a meadow. (A pan faster than about half the frame per frame, heavily blurred, can still read as
a cut: neither the point tracker nor phase correlation finds the motion when so little of the picture overlaps.)
Handheld footage at low frame rates (samples/real/dog_fireplace.mp4) scored such pans as two false cuts.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from dubkit.video.cut_veto import camera_explains
from dubkit.video.scan import scan_video

REAL = Path(__file__).resolve().parents[1] / "samples" / "real"
FPS = 25


def _still(src: Path, t: float, out: Path) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-ss", str(t), "-i", str(src), "-frames:v", "1",
                    "-vf", "scale=640:272,setsar=1", str(out)], check=True)  # fmt: skip
    return out


def whip_then_cut(out: Path, *, cut_frame: int, pan_s: float = 0.48, second_pans: bool = False) -> Path:
    """Still 1 s, whip pan of 1440 px in ``pan_s`` across a 1920x272 panorama seen 480 px wide, rest, hard cut at
    ``cut_frame`` to another picture (panning slowly itself when ``second_pans``); 4 s at 25 fps."""
    pics = [_still(REAL / "street_bikes.mp4", 6.0, out.with_suffix(".a.png")),
            _still(REAL / "street_bikes.mp4", 8.5, out.with_suffix(".b.png")),
            _still(REAL / "person_room.mp4", 1.0, out.with_suffix(".c.png")),
            _still(REAL / "bbb_meadow.mp4", 2.0, out.with_suffix(".d.png"))]  # fmt: skip
    cut = cut_frame / FPS
    x = f"if(lt(t,1),0,if(lt(t,{1 + pan_s}),720*(1-cos(PI*(t-1)/{pan_s})),1440))"
    graph = (f"[0][1][2]hstack=3,crop=480:272:x='{x}':y=0,"
             f"gblur=sigma=8:sigmaV=0.01:enable='between(t,1.02,{1 + pan_s - 0.02})'[p];"
             f"[3]crop=480:272:x='{'40*t' if second_pans else '0'}':y=0[o];"
             "[p][o]concat=n=2:v=1:a=0,format=yuv420p[v]")  # fmt: skip
    inputs = []
    for pic, seconds in zip(pics, (cut, cut, cut, 4.0 - cut)):
        inputs += ["-loop", "1", "-framerate", str(FPS), "-t", f"{seconds:.3f}", "-i", str(pic)]
    subprocess.run(["ffmpeg", "-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[v]",
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", str(out)], check=True)  # fmt: skip
    return out


@pytest.mark.parametrize(
    "cut_frame, second_pans",
    [(65, False),  # long after the pan
     (40, False),  # 4 frames after the last vetoed pan frame: a vetoed pan must not hide it
     (40, True)],  # a cut from a whip pan to a panning shot
)  # fmt: skip
def test_whip_pan_is_no_cut_and_the_hard_cut_is_found_to_the_frame(tmp_path, cut_frame, second_pans):
    clip = whip_then_cut(tmp_path / "whip.mp4", cut_frame=cut_frame, second_pans=second_pans)
    scan = scan_video(clip)
    assert [s.start_frame for s in scan.shots[1:]] == [cut_frame]
    assert scan.shots[1].start == pytest.approx(cut_frame / FPS, abs=1e-3)


def test_the_real_handheld_whip_pan_has_no_cut():
    """samples/real/dog_fireplace.mp4: one shot (its truth file), a whip pan at 0.6–1.2 s at 10.5 fps."""
    assert len(scan_video(REAL / "dog_fireplace.mp4").shots) == 1


def test_a_shifted_picture_is_explained_and_a_different_one_is_not():
    rng = np.random.default_rng(0)

    scene = cv2.resize(rng.integers(0, 256, (40, 90, 3), dtype=np.uint8), (900, 144), interpolation=cv2.INTER_CUBIC)
    before, after = scene[:, 100:356], scene[:, 160:416]  # the camera panned 60 px (a quarter of the frame)
    other = cv2.resize(rng.integers(0, 256, (40, 90, 3), dtype=np.uint8), (256, 144), interpolation=cv2.INTER_CUBIC)
    assert camera_explains(before, after)
    assert not camera_explains(before, other)
    assert not camera_explains(before, before.copy())  # nothing changed: nothing to explain
