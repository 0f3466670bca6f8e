"""The options of the API, grouped by what they decide, with their allowed values as ``Literal`` types.

- ``ModelOptions``: which planner and renderer load (no model → offline foley on CPU). Built into ``Backends``.
- ``CaptionOptions``: which captioner describes the shots. Built into ``Backends`` too.
- ``MusicOptions``: whether the offline composer scores the picture, in which style, played by which SoundFont.
  Built into ``Backends`` too (the planners plan the score, a router sends it to the composer).
- ``FinishingOptions``: what happens after the render — the mix with the original audio, loudness, and what
  is written besides the video.

Each group checks its values when it is made, so a bad value fails before any work. Messages name an option
as ```name``` (its API parameter); the CLI says its flag instead.

The API also takes the fields as flat keywords (``dub(video, mix="duck", loudness=-14)``), the form scripts,
TOML configs and CSV manifests use; ``apply_keywords`` sorts them into their groups.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal, Sequence, TypeVar, get_args

from .errors import InputError

# Kept free of heavy imports: the CLI shows these choices in `--help` without loading numpy or scipy.
MixMode = Literal["auto", "replace", "under", "duck"]
MIX_MODES: tuple[str, ...] = get_args(MixMode)
LoudnessPreset = Literal["broadcast", "streaming"]
LOUDNESS_PRESET_NAMES: tuple[str, ...] = get_args(LoudnessPreset)
Preset = Literal["faithful", "fast"]  # how a model runs: as published, or with dubkit's measured speed-ups
PRESETS: tuple[str, ...] = get_args(Preset)
Licence = Literal["cc0", "by", "any"]  # which recordings may be used: CC0 only, + attribution-only, + copyleft
LICENCES: tuple[str, ...] = get_args(Licence)
CaptionerName = Literal["auto", "cues", "tagger", "clip"]
CAPTIONERS: tuple[str, ...] = get_args(CaptionerName)
Device = Literal["cuda", "mps", "cpu"]  # or an indexed one ("cuda:1"); None: the best available
DEVICES: tuple[str, ...] = get_args(Device)
Loudness = float | LoudnessPreset | None  # integrated LUFS, a preset, or None for no normalisation
MusicMode = Literal["auto", "on", "off", "only"]  # the same as audiostory_core.music.planner.MUSIC_MODES
MUSIC_MODE_NAMES: tuple[str, ...] = get_args(MusicMode)
MusicStyle = Literal["auto", "orchestral", "ambient", "piano", "percussion"]  # "auto" + music.types.MUSIC_STYLES
MUSIC_STYLE_NAMES: tuple[str, ...] = get_args(MusicStyle)


def _path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)


# The ranges numeric options are checked against (a value outside is refused with its range, before any work).
STORY_SECONDS = (0.0, 3600.0)  # story and continue: more than 0 s, at most an hour
CROSSFADE_SECONDS = (0.0, 30.0)
SEEDS = (0, 2**32 - 1)
STEPS = (1, 1000)
DUCK_DB = (-60.0, 0.0)


def check_range(name: str, value: Any, low: float, high: float, unit: str = "", *, above_low: bool = False,
                integer: bool = False) -> Any:
    """``value`` if it is a number within ``[low, high]`` (``(low, high]`` with ``above_low``), else an
    ``InputError`` that names ```name``` and the range, so the user knows what to type instead."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    whole = not integer or (number.is_integer() and not isinstance(value, bool))
    ok = whole and (low < number if above_low else low <= number) and number <= high
    if not ok:
        got = f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else repr(value)
        if integer:
            allowed = f"a whole number from {int(low)} to {int(high)}"
        elif above_low:
            allowed = f"more than {low:g}{unit} and at most {high:g}{unit}"
        else:
            allowed = f"between {low:g} and {high:g}{unit}"
        raise InputError(f"`{name}` must be {allowed}, got {got}")
    return int(number) if integer else value


@dataclass(frozen=True)
class ModelOptions:
    """What plans and renders: ``model`` (a model folder; None = offline), ``t5`` (flan-t5 folder for a DiT-only
    model), ``device``, diffusion ``steps`` (None = the model's default), and ``library`` folders of your own
    sounds for the foley renderer; ``licence`` filters the recordings the foley renderer may use ("by": CC0 and
    attribution-only, the default; "cc0"; "any", copyleft too: the result then inherits e.g. CC-BY-SA);
    ``preset`` how a model runs: "faithful" (the published inference, the default for published weights) or
    "fast" (per-event latent lengths, batching, a stricter grammar); None: the model's own default."""

    model: Path | None = None
    t5: Path | None = None
    device: str | None = None
    steps: int | None = None
    library: tuple[Path, ...] = ()
    licence: Licence = "by"
    preset: Preset | None = None


    def __post_init__(self) -> None:
        if self.preset is not None and self.preset not in PRESETS:
            raise InputError(f"unknown preset {self.preset!r}; choose faithful (the published inference) or fast")
        if self.licence not in LICENCES:
            raise InputError(f"unknown licence filter {self.licence!r}; choose one of {', '.join(LICENCES)} (cc0: "
                             "public domain only; by: also attribution-only; any: copyleft too)")
        # Paths as given by TOML, CSV or a script (str or Path, one folder or several) compare equal once built.
        library: Any = self.library
        one = isinstance(library, (str, Path))
        object.__setattr__(self, "library", tuple(Path(d) for d in ([library] if one else library)))
        object.__setattr__(self, "model", _path(self.model))
        object.__setattr__(self, "t5", _path(self.t5))
        if self.steps is not None:
            object.__setattr__(self, "steps", check_range("steps", self.steps, *STEPS, integer=True))


@dataclass(frozen=True)
class CaptionOptions:
    """``captioner``: "cues" (visual cues, no weights), "clip" (adds open_clip zero-shot tags from
    ``clip_weights`` or the models folder), "auto" (clip when ``clip_weights`` is given, else cues)."""

    captioner: CaptionerName = "auto"
    clip_weights: Path | None = None

    def __post_init__(self) -> None:
        if self.captioner not in CAPTIONERS:
            raise InputError(f"unknown captioner {self.captioner!r}; choose one of {', '.join(CAPTIONERS)}")
        object.__setattr__(self, "clip_weights", _path(self.clip_weights))


@dataclass(frozen=True)
class MusicOptions:
    """``music``: "auto" (a score for cartoons, and for live-action scenes without dialogue), "on" (a score
    under everything), "only" (the score alone, no effects or beds) or "off". ``music_style``: "orchestral"
    (cartoon orchestra), "ambient" (pads), "piano" (solo piano), "percussion", or "auto" (named in the
    instruction, else orchestral for cartoons and ambient for live action). ``soundfont``: a .sf2/.sf3 file
    to play it with (default: the installed General MIDI SoundFont). ``music=None`` is "off" (the watch folder
    and batch manifests turn "off" into None)."""

    music: MusicMode | None = "auto"
    music_style: MusicStyle = "auto"
    soundfont: Path | None = None

    def __post_init__(self) -> None:
        from audiostory_core.music.planner import MUSIC_MODES
        from audiostory_core.music.types import MUSIC_STYLES

        if self.music is None:
            object.__setattr__(self, "music", "off")
        # The core's own lists decide, so these options cannot drift from what the planners accept.
        if self.music not in MUSIC_MODES:
            raise InputError(f"unknown `music` mode {self.music!r}: choose one of {', '.join(MUSIC_MODES)}")
        if self.music_style not in ("auto", *MUSIC_STYLES):
            raise InputError(f"unknown `music_style` {self.music_style!r}: "
                             f"choose one of auto, {', '.join(MUSIC_STYLES)}")
        object.__setattr__(self, "soundfont", _path(self.soundfont))


@dataclass(frozen=True)
class FinishingOptions:
    """``mix``: "replace" the original audio, lay the soundtrack "under" it, "duck" it under speech, or "auto"
    (duck when the video has speech). ``duck_db``: how far it dips (≤ 0). ``loudness``: target LUFS or a preset
    ("broadcast" -23, "streaming" -14), None to skip. ``keep_original_audio`` adds the input's audio as a second
    track; ``deliverables`` writes ``<output file name>.dubkit/`` (timeline, cue sheet, plan, report); ``stems`` adds
    per-layer WAVs to it; ``speech_model`` is a local pyannote checkpoint for speech detection."""

    mix: MixMode = "auto"
    duck_db: float = -12.0
    loudness: Loudness = -23.0
    keep_original_audio: bool = False
    deliverables: bool = True
    stems: bool = False
    speech_model: Path | None = None

    def __post_init__(self) -> None:
        from .soundtrack.loudness import resolve_target

        if self.mix not in MIX_MODES:
            raise InputError(f"unknown mix mode {self.mix!r}: use one of {', '.join(MIX_MODES)}")
        if not float(self.duck_db) <= 0:
            raise InputError(f"`duck_db` must be zero or negative (how far the soundtrack dips), got {self.duck_db:g}")
        check_range("duck_db", self.duck_db, *DUCK_DB, " dB")
        object.__setattr__(self, "loudness", None if self.loudness is None else resolve_target(self.loudness))
        object.__setattr__(self, "speech_model", _path(self.speech_model))


G = TypeVar("G")


def apply_keywords(where: str, keywords: dict[str, Any], groups: Sequence[tuple[type[G], G | None]]) -> list[G | None]:
    """Sort flat keywords into the option groups that declare them; a group neither given nor named stays None.

    ``groups`` pairs each group's class with the instance the caller passed (or None); a keyword overrides the
    field of that instance. An unknown keyword is a ``TypeError``, as for any Python call.
    """
    names = {cls: {f.name for f in fields(cls)} for cls, _ in groups}  # type: ignore[arg-type]
    chosen: dict[type, dict[str, Any]] = {cls: {} for cls, _ in groups}
    for key, value in keywords.items():
        cls = next((c for c, _ in groups if key in names[c]), None)
        if cls is None:
            raise TypeError(f"{where}() got an unexpected keyword argument {key!r}")
        chosen[cls][key] = value
    return [replace(given or cls(), **chosen[cls]) if chosen[cls] else given for cls, given in groups]
