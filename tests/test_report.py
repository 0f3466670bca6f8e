"""report.html: self-contained (no network references), complete, and renders to a non-blank page in Chromium."""
from __future__ import annotations

import base64
import io
import re
import subprocess
import sys
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


def _pngs(page: str) -> list[np.ndarray]:
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(b))).convert("RGB"), dtype=np.float32)
            for b in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]  # fmt: skip


def test_figures_show_a_tone_on_its_symlog_row_and_the_loudness_curve(tmp_path):
    """1 kHz for 3 s then 8 kHz for 3 s: the spectrogram's brightest row in each half is the row the symlog axis
    gives that frequency; the loudness plot draws its curve across the lane and the dashed target."""
    from dubkit.deliver.report import LOUDNESS_SIZE, SPEC_SIZE, spectrogram_row

    t = np.arange(6 * SR) / SR
    tone = 0.3 * np.sin(2 * np.pi * np.where(t < 3, 1000, 8000) * t)
    audio, loud = normalize_loudness(np.stack([tone, tone]).astype(np.float32), SR, target_lufs=-23.0)
    path = write_report(tmp_path / "r.html", title="tones", duration=6.0, thumbnails=[], events=[], cuts=[],
                        audio=audio, sample_rate=SR, loudness=loud, backends={}, timings={})  # fmt: skip
    spec, curve = _pngs(path.read_text(encoding="utf-8"))
    assert spec.shape[:2] == SPEC_SIZE[::-1] and curve.shape[:2] == LOUDNESS_SIZE[::-1]
    brightness = spec.sum(axis=-1)
    first, second = brightness[:, 100:560].mean(axis=1), brightness[:, 640:1160].mean(axis=1)
    assert abs(int(np.argmax(first)) - spectrogram_row(1000, SR)) <= 1, (np.argmax(first), spectrogram_row(1000, SR))
    assert abs(int(np.argmax(second)) - spectrogram_row(8000, SR)) <= 1
    assert spectrogram_row(8000, SR) < spectrogram_row(1000, SR) - 40  # higher pitch, higher up, well apart
    assert first.max() - np.median(first) > 300 and second.max() - np.median(second) > 300  # a real contrast
    # The row that carries 1 kHz in the first half is dark once the tone has moved to 8 kHz.
    row = spectrogram_row(1000, SR)
    assert brightness[row, 100:560].mean() - brightness[row, 640:1160].mean() > 300
    line = np.all(np.abs(curve - np.array([29, 53, 87])) < 40, axis=-1)  # the curve's dark blue
    red = np.all(np.abs(curve - np.array([230, 57, 70])) < 40, axis=-1)  # the target line
    # Short-term loudness is defined from 1.5 s (the 3 s window's centre) to 4.5 s: the curve spans that stretch.
    cols = np.flatnonzero(line.any(axis=0))
    assert cols.min() < 0.3 * 1200 and cols.max() > 0.7 * 1200 and cols.size > 0.4 * 1200
    assert red.any(axis=0).sum() > 0.6 * 1200  # dashed across the plot


def test_report_does_not_import_matplotlib(tmp_path):
    """The page is drawn with numpy and PIL: importing matplotlib costs a dub most of a second."""
    code = (
        "import sys, numpy as np\n"
        "from dubkit.deliver.report import write_report\n"
        f"write_report({str(tmp_path / 'r.html')!r}, title='x', duration=2.0, thumbnails=[], events=[], cuts=[],"
        " audio=np.zeros((2, 96000), np.float32), sample_rate=48000, loudness=None, backends={}, timings={})\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
