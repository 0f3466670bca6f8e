"""report.html: one self-contained page that shows what dubkit did to a video, for a quick review before delivery.

Shot thumbnails along a time axis, the plan's events as coloured bars per layer (hover for caption and times),
the mixed soundtrack's spectrogram and short-term loudness, the score's cue sheet when there is music, each event's sound source and licence, and the
backends and stage timings. Everything is
inline — images are base64 PNG/JPEG, styles are in the page, there is no script — so the file opens anywhere,
offline, and can be mailed or archived as one file.
"""
from __future__ import annotations

import base64
import functools
import html
import io
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFont

from audiostory_core.music.types import ScorePlan
from audiostory_core.tracks import Track, as_track
from audiostory_core.plan.types import LAYERS, SubEvent
from audiostory_core.render.base import Clip
from dubkit.errors import OutputError
from dubkit.soundtrack.loudness import LoudnessReport, short_term_loudness

from .credits import sound_source

LAYER_COLOURS = {"ambience": "#2a9d8f", "fx": "#e76f51", "narrative": "#7b5ea7", "score": "#e9a23b",
                 "dialogue": "#8d99ae"}
_OTHER_COLOUR = "#457b9d"
THUMB_HEIGHT = 72


def write_report(
    path: str | Path,
    *,
    title: str,
    duration: float,
    thumbnails: Sequence[tuple[float, np.ndarray]],
    events: Iterable[SubEvent],
    cuts: Sequence[float],
    audio: np.ndarray | Track,
    sample_rate: int,
    loudness: LoudnessReport | None,
    backends: dict[str, str],
    timings: dict[str, float],
    speech: Sequence[tuple[float, float]] = (),
    score: ScorePlan | None = None,
    clips: Sequence[Clip] = (),
) -> Path:
    """Write the report to ``path`` and return it. ``audio`` is the final mix (channels, samples); ``score`` (the
    plan's cue sheet) adds a table of the music's sections; ``clips`` (the rendered clips) add the event table
    with each event's sound source and licence."""
    events = sorted(events, key=lambda e: (e.start, e.layer))
    duration = max(float(duration), 1e-6)
    body = [
        _header(title, duration, events, cuts, loudness, bool(speech)),
        '<section><h2>Timeline</h2><div class="timeline">',
        _axis(duration),
        _thumb_row(thumbnails, cuts, duration),
        _layer_rows(events, speech, duration),
        "</div></section>",
        _audio_section(audio, sample_rate, duration, loudness),
        _score_section(score) if score is not None else "",
        _events_table(events, clips),
        '<section class="tables">',
        _table("Backends", [(k, v) for k, v in backends.items()]),
        _timings_table(timings),
        _table("Loudness", _loudness_rows(loudness)) if loudness is not None else "",
        "</section>",
    ]
    page = _PAGE.format(title=html.escape(title), style=_STYLE, body="\n".join(body))
    path = Path(path)
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as e:
        raise OutputError(f"cannot write report {path}: {e.strerror}") from e
    return path


# ---------------------------------------------------------------------------------------------------------------
# sections


def _header(title, duration, events, cuts, loudness, has_speech: bool) -> str:
    layers = sorted({e.layer for e in events} | ({"dialogue"} if has_speech else set()), key=_layer_order)
    facts = [
        f"{_clock(duration)} long",
        f"{len(cuts) + 1} shots",
        f"{len(events)} events on {len({e.layer for e in events})} layer{'s' if len({e.layer for e in events}) != 1 else ''}",
    ]
    if loudness is not None and np.isfinite(loudness.output_lufs):
        facts.append(f"{loudness.output_lufs:.1f} LUFS, {loudness.true_peak_dbtp:.1f} dBTP")
    legend = "".join(
        f'<span class="key"><i style="background:{_colour(l)}"></i>{html.escape(l)}</span>' for l in layers
    )
    return (
        f"<header><h1>{html.escape(title)}</h1><p class='facts'>{' · '.join(facts)}</p>"
        f"<p class='legend'>{legend}</p></header>"
    )


def _axis(duration: float) -> str:
    step = _tick_step(duration)
    ticks = "".join(
        f'<span class="tick" style="left:{_pct(t, duration)}">{_clock(t)}</span>'
        for t in np.arange(0.0, duration + 1e-9, step)
    )
    return f'<div class="row"><div class="label"></div><div class="lane axis">{ticks}</div></div>'


def _thumb_row(thumbnails, cuts, duration: float) -> str:
    imgs = []
    for t, frame in thumbnails:
        title = html.escape(f"{_clock(t)}")
        imgs.append(
            f'<img class="thumb" style="left:{_pct(t, duration)}" title="{title}" alt="frame at {title}" '
            f'src="data:image/jpeg;base64,{_jpeg(frame)}">'
        )
    marks = "".join(
        f'<span class="cut" style="left:{_pct(c, duration)}" title="cut at {_clock(c)}"></span>' for c in cuts
    )
    return (
        f'<div class="row"><div class="label">shots</div>'
        f'<div class="lane shots">{"".join(imgs)}{marks}</div></div>'
    )


def _layer_rows(events: list[SubEvent], speech, duration: float) -> str:
    rows = []
    by_layer: dict[str, list[SubEvent]] = {}
    for ev in events:
        by_layer.setdefault(ev.layer, []).append(ev)
    for layer in sorted(by_layer, key=_layer_order):
        for i, lane in enumerate(_lanes(by_layer[layer])):
            bars = []
            for ev in lane:
                end = min(ev.end, duration)
                tip = html.escape(f"{ev.caption} — {_clock(ev.start)}–{_clock(end)} ({ev.duration:.2f} s)", quote=True)
                bars.append(
                    f'<div class="event" style="left:{_pct(ev.start, duration)};width:{_pct(end - ev.start, duration)};'
                    f'background:{_colour(layer)}" title="{tip}">{html.escape(ev.caption)}</div>'
                )
            label = html.escape(layer) if i == 0 else ""
            rows.append(f'<div class="row"><div class="label">{label}</div><div class="lane">{"".join(bars)}</div></div>')
    if speech:
        bars = "".join(
            f'<div class="event speech" style="left:{_pct(s, duration)};width:{_pct(e - s, duration)}" '
            f'title="speech {_clock(s)}–{_clock(e)}"></div>'
            for s, e in speech
        )
        rows.append(f'<div class="row"><div class="label">dialogue</div><div class="lane">{bars}</div></div>')
    return "".join(rows)


def _audio_section(audio: np.ndarray | Track, sample_rate: int, duration: float,
                   loudness: LoudnessReport | None) -> str:
    spec, loud = _audio_figures(as_track(audio), sample_rate, duration, loudness)
    # The plots span their lane edge to edge, so their time axis lines up with the timeline above.
    return (
        '<section><h2>Soundtrack</h2><div class="timeline">'
        + _axis(duration)
        + '<div class="row"><div class="label">spectrum<br><small>20 Hz – 24 kHz</small></div><div class="plot">'
        f'<img class="figure" alt="spectrogram" src="data:image/png;base64,{spec}"></div></div>'
        '<div class="row"><div class="label">loudness<br><small>short-term, LUFS</small></div><div class="plot">'
        f'<img class="figure" alt="short-term loudness" src="data:image/png;base64,{loud}"></div></div>'
        "</div></section>"
    )


def _score_section(score: ScorePlan) -> str:
    """The cue sheet: per section its time, mood, key, meter, tempo, texture, hits (how many on a beat) and how
    it hands over to the next."""
    head = "".join(f"<th>{h}</th>" for h in ("time", "mood", "key", "meter", "tempo", "texture", "hits", "into next"))
    rows = []
    for s in score.sections:
        if s.texture == "tacet":
            rows.append(f"<tr><td>{_clock(s.start)}–{_clock(s.end)}</td><td colspan='7'>no music</td></tr>")
            continue
        hits = f"{len(s.hits)} ({sum(h.on_beat for h in s.hits)} on a beat)" if s.hits else "—"
        cells = (f"{_clock(s.start)}–{_clock(s.end)}", s.mood, s.key_name, f"{s.meter}/4", f"{s.tempo:.0f} bpm",
                 s.texture, hits, s.transition)
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    on = sum(h.on_beat for h in score.hits)
    facts = f"{score.style} · {len(score.hits)} hit(s), {on} on a beat" + (f" · seed {score.seed}" if score.seed is not None else "")
    return (f'<section class="score"><h2>Score</h2><p class="facts">{html.escape(facts)}</p>'
            f"<table><tr>{head}</tr>{''.join(rows)}</table></section>")


def _events_table(events: list[SubEvent], clips: Sequence[Clip]) -> str:
    """Every event with the sound that plays it and that sound's licence (library clip, procedural, music, DiT)."""
    by_event = {id(c.event): sound_source(c) for c in clips}
    by_key = {(c.event.start, c.event.layer, c.event.caption): sound_source(c) for c in clips}
    rows = []
    for ev in events:
        src, licence = by_event.get(id(ev)) or by_key.get((ev.start, ev.layer, ev.caption), ("—", "—"))
        cells = (f"{_clock(ev.start)}–{_clock(ev.end)}", ev.layer, ev.caption, src, licence)
        rows.append("<tr class='ev'>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("time", "layer", "caption", "sound source", "licence"))
    return f'<section class="events"><h2>Events</h2><table><tr>{head}</tr>{"".join(rows)}</table></section>'


def _timings_table(timings: dict[str, float]) -> str:
    total = sum(v for v in timings.values() if v > 0) or 1.0
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td class='num'>{v:.2f} s</td>"
        f"<td class='bar'><i style='width:{100 * max(v, 0) / total:.1f}%'></i></td></tr>"
        for k, v in timings.items()
    )
    rows += f"<tr class='total'><td>total</td><td class='num'>{sum(timings.values()):.2f} s</td><td></td></tr>"
    return f"<div><h2>Timings</h2><table>{rows}</table></div>"


def _table(title: str, rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<div><h2>{html.escape(title)}</h2><table>{body or '<tr><td>—</td></tr>'}</table></div>"


def _loudness_rows(rep: LoudnessReport) -> list[tuple[str, str]]:
    def db(v: float, unit: str) -> str:
        return f"{v:.1f} {unit}" if np.isfinite(v) else "silent"

    return [
        ("target", f"{rep.target_lufs:.1f} LUFS, ceiling {rep.ceiling_dbtp:.1f} dBTP"),
        ("input", db(rep.input_lufs, "LUFS")),
        ("output", db(rep.output_lufs, "LUFS")),
        ("true peak", db(rep.true_peak_dbtp, "dBTP")),
        ("gain", f"{rep.gain_db:+.1f} dB"),
        ("limiter", f"{rep.limiter_reduction_db:.1f} dB at the deepest" if rep.limited else "not needed"),
    ]


# ---------------------------------------------------------------------------------------------------------------
# images


SPEC_SIZE = (1200, 240)  # the spectrogram's pixels: it is computed at this resolution, not drawn from every frame
LOUDNESS_SIZE = (1200, 150)
_NFFT = 2048
_LOW_HZ = 20.0
_LINTHRESH = 200.0  # symmetric-log frequency axis: linear below 200 Hz, logarithmic (base 10) above
_LINSCALE = 1.0 / (1.0 - 1.0 / 10)  # the linear part spans as much as one decade would
# magma (van der Walt & Smith's perceptually uniform map, CC0; dark = quiet) at 17 evenly spaced anchors, from
# which the 256-entry table is interpolated.
_MAGMA = np.array([
    (0, 0, 4), (10, 8, 34), (29, 17, 71), (54, 16, 107), (81, 18, 124), (106, 28, 129), (131, 38, 129),
    (156, 46, 127), (183, 55, 121), (208, 65, 111), (231, 82, 99), (245, 107, 92), (252, 137, 97),
    (254, 167, 114), (254, 196, 136), (253, 226, 163), (252, 253, 191),
], np.float64)  # fmt: skip
_LUT = np.stack([np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(_MAGMA)), _MAGMA[:, k]) for k in range(3)],
                axis=-1).round().astype(np.uint8)  # fmt: skip
_SS = 2  # the loudness plot is drawn at twice its size and halved: smooth lines without an antialiasing renderer


def _symlog(hz: np.ndarray | float) -> np.ndarray:
    """Frequency (Hz, ≥ 0) → height on the symmetric-log axis: linear to 200 Hz, then 200 units per decade."""
    f = np.asarray(hz, np.float64)
    return np.where(f <= _LINTHRESH, f * _LINSCALE,
                    _LINTHRESH * (_LINSCALE + np.log10(np.maximum(f, _LINTHRESH) / _LINTHRESH)))  # fmt: skip


def _symlog_inverse(y: np.ndarray) -> np.ndarray:
    """Height on the symmetric-log axis → frequency (Hz): the inverse of :func:`_symlog`."""
    y = np.asarray(y, np.float64)
    knee = _LINTHRESH * _LINSCALE
    return np.where(y <= knee, y / _LINSCALE, _LINTHRESH * 10.0 ** (np.maximum(y, knee) / _LINTHRESH - _LINSCALE))


def spectrogram_row(hz: float, sample_rate: int, height: int = SPEC_SIZE[1]) -> int:
    """The image row (0 = top) that shows frequency ``hz``: 20 Hz is the bottom row, Nyquist the top one."""
    lo, hi = (float(v) for v in _symlog(np.array([_LOW_HZ, sample_rate / 2])))
    return height - 1 - int(round((float(_symlog(hz)) - lo) / (hi - lo) * (height - 1)))


def _audio_figures(
    audio: Track, sample_rate: int, duration: float, loudness: LoudnessReport | None
) -> tuple[str, str]:
    """(spectrogram PNG, loudness PNG), base64; the plots fill the image so x maps linearly onto the lane."""
    width, height = SPEC_SIZE
    if audio.samples >= 1024:
        img = Image.fromarray(_spectrogram_image(audio, sample_rate, width, height)[::-1])  # row 0 = Nyquist
    else:
        img = Image.new("RGB", SPEC_SIZE, "black")
    draw = ImageDraw.Draw(img)
    for hz, text in ((100, "100 Hz"), (1000, "1 kHz"), (10000, "10 kHz")):
        _tick_label(draw, spectrogram_row(hz, sample_rate, height), text, "white", _font(12), outline="#000004")
    return _png(img), _loudness_figure(audio, sample_rate, duration, loudness)


def _spectrogram_image(audio: Track, sample_rate: int, width: int, height: int) -> np.ndarray:
    """RGB (height, width) image of the mono mix's power spectrum in dB, magma, 90 dB range, on the symlog
    frequency axis: per pixel column the mean power of the Hann-windowed 2048-point frames in its time span
    (hop 1024; at least one frame), read column by column so memory does not grow with the length."""
    n = audio.samples
    nper = _NFFT if n >= _NFFT else 1024
    window = np.hanning(nper + 1)[:-1].astype(np.float32)
    columns = np.zeros((width, nper // 2 + 1))
    edges = np.linspace(0, n, width + 1).astype(np.int64)
    for c in range(width):
        a, b = int(edges[c]), int(max(edges[c + 1], edges[c] + 1))
        starts = np.arange(a, max(b - nper, a) + 1, nper // 2)
        centre = (a + b) // 2 - nper // 2
        starts = starts if b - a >= nper else np.array([min(max(centre, 0), max(n - nper, 0))])
        chunk = audio.read(int(starts[0]), int(starts[-1]) + nper).mean(axis=0)
        frames = np.lib.stride_tricks.sliding_window_view(chunk, nper)[:: nper // 2][: starts.size]
        columns[c] = (np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2).mean(axis=0)
    db = 10 * np.log10(columns / (sample_rate * float((window**2).sum())) + 1e-12)
    lo, hi = (float(v) for v in _symlog(np.array([_LOW_HZ, sample_rate / 2])))
    rows = _symlog_inverse(np.linspace(lo, hi, height))  # each pixel row's frequency
    bins = np.clip(np.rint(rows / (sample_rate / nper)).astype(int), 0, nper // 2)
    top = float(db.max())
    scaled = np.clip((db[:, bins].T - (top - 90)) / 90, 0, 1)  # (height, width), row 0 = 20 Hz
    return _LUT[np.rint(scaled * 255).astype(np.intp)]


def _loudness_figure(audio: Track, sample_rate: int, duration: float, loudness: LoudnessReport | None) -> str:
    """Short-term loudness over time (line over a light fill), grid and labels every 10 LU, the target dashed."""
    width, height = LOUDNESS_SIZE
    W, H = width * _SS, height * _SS
    img = Image.new("RGB", (W, H), "#fafafa")
    draw = ImageDraw.Draw(img)
    lo, hi = -40.0, -5.0
    times = st = np.zeros(0)
    if audio.samples >= int(0.4 * sample_rate):
        times, st = short_term_loudness(audio, sample_rate)
        heard = st[np.isfinite(st)]
        if heard.size:
            lo, hi = min(lo, float(heard.min()) - 3), max(hi, float(heard.max()) + 3)
    x = lambda t: np.asarray(t, np.float64) / duration * W  # noqa: E731
    y = lambda v: (hi - np.asarray(v, np.float64)) / (hi - lo) * H  # noqa: E731
    ticks = [v for v in range(int(np.ceil(lo / 10)) * 10, int(hi) + 1, 10) if lo + 3 < v < hi - 2]
    for v in ticks:
        yy = float(y(v))
        draw.line([(0, yy), (W, yy)], fill=_blend("#b0b0b0", "#fafafa", 0.3), width=_SS)
    # Silence (-inf) breaks the curve, as a gap rather than a drop to the bottom.
    finite = np.isfinite(st)
    for run in np.split(np.arange(st.size), np.flatnonzero(np.diff(finite.astype(np.int8))) + 1):
        if run.size < 2 or not finite[run[0]]:
            continue
        pts = list(zip(x(times[run]).tolist(), y(st[run]).tolist()))
        draw.polygon([(pts[0][0], H), *pts, (pts[-1][0], H)], fill=_blend("#457b9d", "#fafafa", 0.25))
        draw.line(pts, fill="#1d3557", width=int(round(2.2 * _SS)), joint="curve")
    if loudness is not None:
        yy = float(y(loudness.target_lufs))
        dash, gap = 5 * _SS, 2 * _SS
        for x0 in range(0, W, dash + gap):
            draw.line([(x0, yy), (min(x0 + dash, W), yy)], fill="#e63946", width=_SS)
    img = img.reduce(_SS)
    draw = ImageDraw.Draw(img)
    for v in ticks:
        _tick_label(draw, float(y(v)) / _SS, f"{v}".replace("-", "\u2212"), "#1d2430", _font(12))
    if loudness is not None:
        text, font = f"target {loudness.target_lufs:.0f} LUFS", _font(13)
        draw.text((float(x(duration * 0.995)) / _SS - 4, float(y(loudness.target_lufs)) / _SS - 2), text,
                  fill="#e63946", font=font, anchor="rd")  # right-aligned, just above the line
    return _png(img)


def _tick_label(draw: ImageDraw.ImageDraw, row: float, text: str, colour: str, font, outline: str | None = None
                ) -> None:
    """A y-axis label inside the plot at its left edge, centred on ``row``: the plot keeps its full width, so its
    time axis still lines up with the timeline's. ``outline`` rings the letters so they read on any background."""
    draw.text((8, row), text, fill=colour, font=font, anchor="lm", stroke_width=1 if outline else 0,
              stroke_fill=outline)


@functools.cache
def _font(size: int):
    return ImageFont.load_default(size=size)  # (loaded once per size, not per label)


def _blend(colour: str, background: str, alpha: float) -> tuple[int, int, int]:
    a, b = np.array(ImageColor.getrgb(colour)[:3]), np.array(ImageColor.getrgb(background)[:3])
    return tuple(int(v) for v in np.rint(alpha * a + (1 - alpha) * b))


def _png(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")  # PIL writes no tool name or URL into the file
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _jpeg(frame: np.ndarray) -> str:
    img = Image.fromarray(np.asarray(frame, dtype=np.uint8)).convert("RGB")
    w = max(int(round(img.width * THUMB_HEIGHT / max(img.height, 1))), 1)
    img = img.resize((w, THUMB_HEIGHT), Image.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=82)
    return base64.b64encode(buf.getvalue()).decode("ascii")


# ---------------------------------------------------------------------------------------------------------------
# helpers


def _lanes(events: list[SubEvent]) -> list[list[SubEvent]]:
    lanes: list[list[SubEvent]] = []
    for ev in events:
        for lane in lanes:
            if lane[-1].end <= ev.start + 1e-9:
                lane.append(ev)
                break
        else:
            lanes.append([ev])
    return lanes


def _layer_order(layer: str) -> tuple[int, str]:
    return (LAYERS.index(layer) if layer in LAYERS else len(LAYERS), layer)


def _colour(layer: str) -> str:
    return LAYER_COLOURS.get(layer, _OTHER_COLOUR)


def _pct(t: float, duration: float) -> str:
    return f"{100 * min(max(t / duration, 0.0), 1.0):.3f}%"


def _clock(t: float) -> str:
    m, s = divmod(max(t, 0.0), 60)
    return f"{int(m)}:{s:04.1f}"


def _tick_step(duration: float) -> float:
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600):
        if duration / step <= 12:
            return float(step)
    return 1200.0


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — dubkit report</title>
<style>{style}</style></head>
<body>
{body}
<footer>made by dubkit · this page is self-contained: no scripts, no external resources</footer>
</body></html>
"""

_STYLE = """
:root { --ink:#1d2430; --muted:#6b7280; --line:#e5e7eb; --bg:#f7f7f5; }
* { box-sizing: border-box; }
body { margin: 0; padding: 28px 36px; background: var(--bg); color: var(--ink);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
header h1 { margin: 0 0 4px; font-size: 24px; font-weight: 650; }
.facts { margin: 0; color: var(--muted); }
.legend { margin: 8px 0 0; }
.key { margin-right: 16px; color: var(--muted); }
.key i { display: inline-block; width: 12px; height: 12px; border-radius: 3px; margin-right: 6px; vertical-align: -1px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 16px 18px; margin-top: 20px; }
h2 { margin: 0 0 12px; font-size: 15px; font-weight: 600; }
.row { display: flex; align-items: stretch; margin: 4px 0; }
.label { width: 92px; flex: none; color: var(--muted); font-size: 12px; padding-top: 6px; }
.lane { position: relative; flex: 1; height: 28px; background: #fafafa; border-radius: 4px; }
.lane.axis { height: 18px; background: none; border-bottom: 1px solid var(--line); }
.tick { position: absolute; top: 0; transform: translateX(-50%); font-size: 11px; color: var(--muted); }
.tick:first-child { transform: none; }
.tick:last-child:not(:first-child) { transform: translateX(-100%); }
.lane.shots { height: 84px; background: #eef0f2; overflow: hidden; }
.thumb { position: absolute; top: 6px; height: 72px; border-radius: 3px; box-shadow: 0 1px 3px rgba(0,0,0,.25); }
.cut { position: absolute; top: 0; bottom: 0; width: 2px; margin-left: -1px; background: #e63946; }
.event { position: absolute; top: 3px; bottom: 3px; border-radius: 4px; color: #fff; font-size: 11px;
         padding: 3px 6px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
         border-left: 1px solid rgba(255,255,255,.7); }
.event:hover { filter: brightness(1.12); outline: 2px solid rgba(0,0,0,.25); }
.event.speech { background: repeating-linear-gradient(45deg, #8d99ae, #8d99ae 6px, #a3aec0 6px, #a3aec0 12px); }
.plot { flex: 1; border-radius: 4px; overflow: hidden; }
.figure { width: 100%; height: auto; display: block; }
.label small { color: #9ca3af; font-size: 10px; }
.tables { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 24px; }
table { border-collapse: collapse; width: 100%; }
td { padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
td:first-child { color: var(--muted); width: 40%; }
td.num { text-align: right; font-variant-numeric: tabular-nums; width: 22%; }
td.bar i { display: block; height: 8px; margin-top: 5px; border-radius: 4px; background: #457b9d; }
tr.total td { font-weight: 600; border-bottom: none; }
section.score th, section.events th { text-align: left; font-weight: 600; color: var(--muted); padding: 5px 8px; font-size: 12px; }
section.score td:first-child, section.events td:first-child { width: auto; }
footer { margin-top: 18px; color: var(--muted); font-size: 12px; }
"""
