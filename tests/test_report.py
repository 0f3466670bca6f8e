"""report.html: self-contained (no network references), complete, and renders to a non-blank page in Chromium."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from audiostory_core.plan.types import SubEvent
from audiostory_core.render.base import Clip
from dubkit.deliver.report import write_report
from dubkit.soundtrack.loudness import normalize_loudness

SR = 48000
DURATION = 10.0
CHROMIUM = Path("/usr/bin/chromium")
EVENTS = [
    SubEvent("rain on a tin roof", 0.0, 5.0, layer="ambience"),
    SubEvent("wind & <gusts>", 5.0, 5.0, layer="ambience"),
    SubEvent("door slams", 2.5, 0.8, layer="fx", kind="impact"),
    SubEvent("glass shatters", 2.9, 1.0, layer="fx"),
    SubEvent("a low drone swells", 7.0, 3.0, layer="narrative"),
]


_SILENT = np.zeros((2, 1), np.float32)
_RAIN = {"clip": "rain_roof.wav", "path": "/lib/rain_roof.wav", "source": "testsource", "licence": "CC0-1.0",
         "licence_class": "cc0", "attribution": "rain by Tester", "url": ""}
_SLAM = {**_RAIN, "clip": "Door slam", "path": "/lib/slam.wav", "licence": "CC-BY-3.0", "licence_class": "by"}
CLIPS = [
    Clip(_SILENT, SR, EVENTS[0], source="library:/lib/rain_roof.wav", credits=[_RAIN]),
    Clip(_SILENT, SR, EVENTS[1], source="synth:wind"),
    Clip(_SILENT, SR, EVENTS[2], source="library:/lib/slam.wav", credits=[_SLAM]),
    Clip(_SILENT, SR, EVENTS[3], source="dit"),
    Clip(_SILENT, SR, EVENTS[4], source="composer:ambient (FluidR3_GM.sf2)"),
]


def _frame(colour: int) -> np.ndarray:
    img = np.zeros((180, 320, 3), np.uint8)
    img[..., colour] = 200
    img[60:120, 100:220] = 255
    return img


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    t = np.arange(int(DURATION * SR)) / SR
    audio = (0.05 * rng.standard_normal((2, t.size)) + 0.2 * np.sin(2 * np.pi * 440 * t) * (t > 3)).astype(np.float32)
    audio, loud = normalize_loudness(audio, SR, target_lufs=-23.0)
    path = tmp_path_factory.mktemp("report") / "report.html"
    return write_report(
        path, title="clip <1>.mp4", duration=DURATION, thumbnails=[(0.0, _frame(0)), (4.0, _frame(1)), (7.5, _frame(2))],
        events=EVENTS, cuts=[4.0, 7.5], audio=audio, sample_rate=SR, loudness=loud,
        backends={"captioner": "visual cues", "planner": "scene", "renderer": "foley"},
        timings={"scan": 1.25, "plan": 0.05, "render": 3.5, "mix": 0.4}, speech=[(1.0, 2.0)], clips=CLIPS,
    )  # fmt: skip


def test_report_is_self_contained(report):
    page = report.read_text(encoding="utf-8")
    assert not re.search(r"https?:", page, re.I)
    assert "<script" not in page.lower() and "@import" not in page
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page) + re.findall(r"url\(([^)]*)\)", page)
    assert refs and all(r.startswith("data:image/") for r in refs), refs
    assert len(re.findall(r'src="data:image/jpeg;base64,', page)) == 3  # one per thumbnail
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 2  # spectrogram, loudness


def test_report_shows_every_event_escaped_with_times(report):
    page = report.read_text(encoding="utf-8")
    bars = re.findall(r'<div class="event"[^>]*title="([^"]*)"', page)
    assert len(bars) == len(EVENTS)
    assert "wind &amp; &lt;gusts&gt;" in page and "<gusts>" not in page
    assert any(b.startswith("door slams — 0:02.5–0:03.3") for b in bars)
    assert page.count('class="cut"') == 2
    assert "clip &lt;1&gt;.mp4" in page
    for stage in ("scan", "render", "mix", "foley", "-23.0 LUFS"):
        assert stage in page


def test_report_names_each_event_s_sound_source_and_licence(report):
    page = report.read_text(encoding="utf-8")
    rows = re.findall(r"<tr class='ev'>(.*?)</tr>", page)
    assert len(rows) == len(EVENTS)
    cells = {re.findall(r"<td>(.*?)</td>", r)[2]: re.findall(r"<td>(.*?)</td>", r)[3:] for r in rows}
    assert cells["rain on a tin roof"] == ["library: rain_roof.wav", "CC0-1.0"]
    assert cells["door slams"] == ["library: Door slam", "CC-BY-3.0"]
    assert cells["wind &amp; &lt;gusts&gt;"][0] == "procedural (wind)"
    assert cells["glass shatters"][0] == "DiT"
    assert cells["a low drone swells"][0].startswith("music")


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    shot = tmp_path / "shot.png"
    cmd = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,1600",
        report.resolve().as_uri(),
    ]  # fmt: skip
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert shot.is_file(), "chromium wrote no screenshot"
    img = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float32)
    assert img.shape[:2] == (1600, 1280)
    assert img.std() > 20  # not a blank page
    top = img[:900]
    # The layer colours and the magma spectrogram are on screen (the page really rendered its content).
    teal = np.all(np.abs(top - np.array([42, 157, 143])) < 12, axis=-1).sum()
    orange = np.all(np.abs(top - np.array([231, 111, 81])) < 12, axis=-1).sum()
    assert teal > 2000 and orange > 500, (teal, orange)
