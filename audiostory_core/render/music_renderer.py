"""The music renderer: the plan's score → notes (the composer) → audio played by sampled instruments (FluidSynth
with a General MIDI SoundFont), rendered offline, sample-exact.

The whole score is rendered as one continuous performance and then cut into one clip per "score" event, each
with its crossfade tail taken from the same performance, so assembly's equal-gain crossfades give back the
performance exactly. Notes are started on the sample their time falls on (FluidSynth renders in 64-sample
blocks, so an onset is at most 1.3 ms late at 48 kHz — far inside a frame), and the audio is exactly the score's
length. Same score and seed → the same samples.
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..errors import RenderError
from ..music.composer import Composition, Note, compose
from ..music.midi import DRUM_CHANNEL, channels, initial_controls
from ..music.styles import INSTRUMENTS
from ..music.types import ScorePlan
from ..plan.types import Plan
from ..timing import to_samples
from .base import Clip, event_samples

# Where Debian puts the SoundFonts, best first: fluid-soundfont-gm (full GM bank), then MuseScore's (the lighter
# musescore-general-soundfont-small), then whatever the system's default GM SoundFont is.
SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf3/MuseScore_General.sf3",
    "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3",
    "/usr/share/sounds/sf2/MuseScore_General.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf3/default-GM.sf3",
)
SOUNDFONT_ENV = "DUBKIT_SOUNDFONT"
DEFAULT_GAIN = 0.2  # FluidSynth's own default: a full orchestral tutti peaks near -15 dBFS, room for the mix
INTERP_LINEAR = 1  # fluid_interp: linear (the default is 4th order)
GEN_VOLENVRELEASE = 38  # SoundFont generator: volume envelope release (timecents)
END_FADE = 0.01  # seconds faded at the very end, so the last frame's chord does not end in a click
MISSING_HINT = ("install the General MIDI SoundFont with `apt-get install fluid-soundfont-gm` "
                "(or the lighter musescore-general-soundfont-small), give your own .sf2/.sf3 file, or switch the music off")


def find_soundfont(path: str | os.PathLike | None = None) -> Path:
    """The SoundFont to play with: ``path`` if given (it must be a readable file), else $DUBKIT_SOUNDFONT, else
    the first installed of ``SOUNDFONT_CANDIDATES``. Raises ``RenderError`` saying what to install."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise RenderError(f"SoundFont {p} not found: give an existing .sf2/.sf3 file")
        if not os.access(p, os.R_OK):
            raise RenderError(f"SoundFont {p} is not readable: check its permissions")
        return p
    env = os.environ.get(SOUNDFONT_ENV)
    if env:
        return find_soundfont(env)
    for cand in SOUNDFONT_CANDIDATES:
        p = Path(cand)
        if p.is_file() and os.access(p, os.R_OK):
            return p.resolve()
    raise RenderError(f"no General MIDI SoundFont found for the music: {MISSING_HINT}")


def _fluidsynth():
    try:
        import fluidsynth
    except ImportError as e:
        raise RenderError(
            f"the music needs the FluidSynth library ({e}): install it with `apt-get install libfluidsynth3` "
            "and the Python package pyfluidsynth, or switch the music off") from None
    write = getattr(fluidsynth._fl, "fluid_synth_write_float", None)
    if write is None:
        raise RenderError("this FluidSynth library has no fluid_synth_write_float: install libfluidsynth3 (2.x)")
    write.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                      ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    write.restype = ctypes.c_int
    set_gen = fluidsynth._fl.fluid_synth_set_gen
    set_gen.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_float]
    set_gen.restype = ctypes.c_int
    interp = fluidsynth._fl.fluid_synth_set_interp_method
    interp.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    interp.restype = ctypes.c_int
    return fluidsynth, write


def synthesize(
    comp: Composition,
    soundfont: str | os.PathLike,
    sample_rate: int = 48000,
    *,
    gain: float = DEFAULT_GAIN,
    exclude: Callable[[Note], bool] | None = None,
) -> np.ndarray:
    """Play ``comp`` through FluidSynth: float32 (2, samples), exactly the score's duration long.

    ``exclude`` leaves out the notes it is true for (e.g. the hits), so a part can be heard on its own as the
    difference of two renders (FluidSynth mixes voices linearly).
    """
    out = np.zeros((2, to_samples(comp.score.duration, sample_rate)), dtype=np.float32)
    for pos, block in synthesize_blocks(comp, soundfont, sample_rate, gain=gain, exclude=exclude):
        out[:, pos : pos + block.shape[-1]] = block
    return out


SYNTH_BLOCK = 1 << 18  # samples per block of ``synthesize_blocks``: 5.5 s at 48 kHz


def synthesize_blocks(
    comp: Composition,
    soundfont: str | os.PathLike,
    sample_rate: int = 48000,
    *,
    gain: float = DEFAULT_GAIN,
    exclude: Callable[[Note], bool] | None = None,
    block: int = SYNTH_BLOCK,
) -> Iterator[tuple[int, np.ndarray]]:
    """``synthesize`` as ``(first sample, (2, m) float32)`` blocks in order: an hour's score is played without
    ever being whole in memory (the samples are the same: FluidSynth renders sequentially either way)."""
    fluidsynth, write = _fluidsynth()
    n = to_samples(comp.score.duration, sample_rate)
    fade = min(n, to_samples(END_FADE, sample_rate))
    synth = _open_synth(fluidsynth, comp, soundfont, sample_rate, gain)
    try:
        pending = iter(_events(comp, channels(comp), sample_rate, exclude))
        nxt = next(pending, None)
        for lo in range(0, n, block):
            hi = min(lo + block, n)
            buf = np.zeros((2, hi - lo), dtype=np.float32)
            pos = lo
            while nxt is not None and min(nxt[0], n) < hi:
                if nxt[0] > pos:
                    _render(write, synth.synth, buf[0], buf[1], pos - lo, nxt[0] - lo)
                    pos = nxt[0]
                _send(synth, nxt)
                nxt = next(pending, None)
            if pos < hi:
                _render(write, synth.synth, buf[0], buf[1], pos - lo, hi - lo)
            if hi > n - fade:  # the last END_FADE seconds fade out
                k = max(lo, n - fade)
                buf[:, k - lo :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[k - (n - fade) : hi - (n - fade)]
            yield lo, buf
    finally:
        synth.delete()


def _open_synth(fluidsynth, comp: Composition, soundfont: str | os.PathLike, sample_rate: int, gain: float):
    """A FluidSynth with the SoundFont loaded and every instrument of ``comp`` on its channel."""
    # Samples load when a program is selected (all at time 0, so rendering is unaffected): a 148 MB SoundFont
    # opens in milliseconds instead of a third of a second, a compressed .sf3 in a fraction of its 7 s.
    settings = {"synth.polyphony": 512, "synth.cpu-cores": 1, "synth.chorus.active": 0, "synth.reverb.active": 1,
                "synth.dynamic-sample-loading": 1}
    synth = fluidsynth.Synth(gain=float(gain), samplerate=float(sample_rate), channels=16, **settings)
    sfid = synth.sfload(str(soundfont))
    if sfid < 0:
        synth.delete()
        raise RenderError(f"FluidSynth cannot load the SoundFont {soundfont}: is it a .sf2/.sf3 file?")
    for name, ch in channels(comp).items():
        inst = INSTRUMENTS[name]
        bank = 128 if inst.drum else 0
        if synth.program_select(ch, sfid, bank, inst.program) != 0:
            synth.program_select(ch, sfid, bank, 0)  # a SoundFont without this program: its first one
        for control, value in initial_controls(name):
            synth.cc(ch, control, value)
        if inst.release:
            fluidsynth._fl.fluid_synth_set_gen(synth.synth, ch, GEN_VOLENVRELEASE, float(inst.release))
        if inst.linear:
            fluidsynth._fl.fluid_synth_set_interp_method(synth.synth, ch, INTERP_LINEAR)
    return synth


def _send(synth, event: tuple) -> None:
    _, _, kind, a, b, c = event
    if kind == 0:
        synth.noteoff(a, b)
    elif kind == 1:
        synth.cc(a, b, c)
    else:
        synth.noteon(a, b, c)


def _render(write, synth_ptr, left: np.ndarray, right: np.ndarray, lo: int, hi: int) -> None:
    step = 1 << 16
    for a in range(lo, hi, step):
        m = min(step, hi - a)
        rc = write(synth_ptr, m, left.ctypes.data + 4 * a, 0, 1, right.ctypes.data + 4 * a, 0, 1)
        if rc != 0:
            raise RenderError("FluidSynth failed while rendering the music")


def _events(comp: Composition, chans: dict[str, int], rate: int, exclude) -> list[tuple]:
    """(sample, order, kind, channel, key/control, velocity/value) sorted; at one sample note-offs come first,
    then controls, then note-ons, so a repeated note is struck again."""
    tmap = comp.tempo_map
    ev: list[tuple] = []
    for note in comp.notes:
        if exclude is not None and exclude(note):
            continue
        ch = chans[note.track]
        on = to_samples(tmap.time_at(note.start), rate)
        off = max(on + 1, to_samples(tmap.time_at(note.end), rate))
        ev.append((on, 2, 2, ch, note.pitch, note.velocity))
        ev.append((off, 0, 0, ch, note.pitch, 0))
    for c in comp.controls:
        if c.track in chans:
            ev.append((to_samples(tmap.time_at(c.beat), rate), 1, 1, chans[c.track], c.control, c.value))
    ev.sort(key=lambda e: (e[0], e[1], e[3], e[4]))
    return ev


class MusicRenderer:
    """Renderer seam for the "score" layer: ``render(plan, conditioning=None, *, seed=0) -> list[Clip]``.

    ``soundfont``: a .sf2/.sf3 file (default: the installed General MIDI SoundFont, see ``find_soundfont``).
    ``gain``: FluidSynth's master gain. A plan without a ``score`` but with "score" events (an LLM's plan) is
    scored from those events' captions and the plan's spot effects.
    """

    name = "composer"
    layers = ("score",)

    def __init__(self, soundfont: str | os.PathLike | None = None, *, sample_rate: int = 48000,
                 gain: float = DEFAULT_GAIN) -> None:
        if int(sample_rate) < 22050:
            raise RenderError(f"music sample rate {sample_rate} is too low; use 22050 Hz or more (48000 default)")
        if not (0 < float(gain) <= 10):
            raise RenderError(f"music gain must be between 0 and 10 (FluidSynth's scale), got {gain!r}")
        _fluidsynth()
        self.soundfont = find_soundfont(soundfont)
        self.sample_rate = int(sample_rate)
        self.gain = float(gain)
        self.last_composition: Composition | None = None

    def prepare(self, plan: Plan) -> None:
        """Give a plan that has "score" events but no cue sheet (an LLM's plan) one, from the score events'
        captions and the whole plan's onset events (its hits). A router calls this with the whole plan before it
        hands this renderer only the score events."""
        if plan.score is None and any(e.layer in self.layers for e in plan.events):
            from ..music.planner import score_from_plan

            plan.score = score_from_plan(plan)

    def render(self, plan: Plan, conditioning: Sequence[Any] | None = None, *, seed: int = 0) -> list[Clip]:
        events = [e for e in plan.events if e.layer in self.layers]
        if not events:
            return []
        self.prepare(plan)
        audio = self.render_score(plan.score, seed)
        clips = []
        for ev in events:
            start = to_samples(ev.start, self.sample_rate)
            want = event_samples(ev, self.sample_rate)
            piece = audio[:, max(start, 0) : max(start, 0) + want]
            if piece.shape[-1] < want:
                piece = np.pad(piece, ((0, 0), (0, want - piece.shape[-1])))
            clips.append(Clip(audio=np.ascontiguousarray(piece), sample_rate=self.sample_rate, event=ev,
                              source=f"composer:{plan.score.style} ({self.soundfont.name})"))
        return clips

    def render_iter(self, plan: Plan, conditioning: Sequence[Any] | None = None, *, seed: int = 0) -> Iterator[Clip]:
        """The clips of ``render`` as parts (``Clip.offset``) played block by block: the score of an hour-long
        video never sits in memory whole, nor does one of its events."""
        events = sorted((e for e in plan.events if e.layer in self.layers), key=lambda e: e.start)
        if not events:
            return
        self.prepare(plan)
        comp = self._compose(plan.score, seed)
        source = f"composer:{plan.score.style} ({self.soundfont.name})"
        spans = [(to_samples(e.start, self.sample_rate), event_samples(e, self.sample_rate)) for e in events]
        for lo, block in synthesize_blocks(comp, self.soundfont, self.sample_rate, gain=self.gain):
            hi = lo + block.shape[-1]
            for ev, (start, want) in zip(events, spans):
                a, b = max(lo, start), min(hi, start + want)
                if b > a:
                    yield Clip(audio=block[:, a - lo : b - lo], sample_rate=self.sample_rate, event=ev,
                               source=source, offset=a - start)

    def _compose(self, score: ScorePlan, seed: int) -> Composition:
        """The score composed with ``seed``, the seed recorded on it (its MIDI is then written as heard)."""
        comp = compose(score, seed)
        score.seed = int(seed)
        self.last_composition = comp
        return comp

    def render_score(self, score: ScorePlan, seed: int = 0, *,
                     exclude: Callable[[Note], bool] | None = None) -> np.ndarray:
        """The score composed with ``seed`` and played: float32 (2, samples) at ``sample_rate``, exactly
        ``score.duration`` long. Records the seed on the score so its MIDI can be written as heard."""
        comp = self._compose(score, seed)
        return synthesize(comp, self.soundfont, self.sample_rate, gain=self.gain, exclude=exclude)


__all__ = ["DRUM_CHANNEL", "MusicRenderer", "find_soundfont", "synthesize"]
