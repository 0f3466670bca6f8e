"""Musical vocabulary: moods (mode, tempo, meter, progressions, texture) and styles (which General MIDI
instruments play which role).

Why tables: these are the choices a composer makes from experience ("a sneak is a minor pizzicato walk at a
walking tempo"); keeping them as data makes them easy to read, test and extend, and keeps the composer's code
about *how* to write, not *what*.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Mood:
    mode: str
    tempo: tuple[float, float]  # the range the tempo fit may choose a base from
    nominal: float  # preferred tempo
    meters: tuple[int, ...]  # beats per bar the composer may choose from (first = default)
    texture: str
    progressions: tuple[tuple[int, ...], ...]  # scale degrees 1..7, one chord per harmonic step
    chords_per_bar: int = 1
    words: tuple[str, ...] = ()  # words in a scene description or instruction that suggest this mood


MOODS: dict[str, Mood] = {
    "calm": Mood("major", (66, 92), 76, (3, 4), "arpeggio",
                 ((1, 4, 1, 5), (1, 6, 4, 5), (1, 3, 4, 5), (4, 1, 2, 5)),
                 words=("calm", "peaceful", "gentle", "quiet", "serene", "meadow", "sunny", "soft", "breeze",
                        "still", "relaxed", "tender", "pastoral", "lullaby", "dreamy")),
    "playful": Mood("major", (100, 138), 116, (4, 2), "oompah",
                    ((1, 6, 2, 5), (1, 4, 5, 1), (1, 4, 2, 5), (1, 6, 4, 5)),
                    words=("playful", "bounce", "bounces", "bouncing", "ball", "funny", "comic", "cartoon", "happy",
                           "cheerful", "jolly", "silly", "toy", "whimsical", "light-hearted", "fun")),
    "sneak": Mood("minor", (84, 108), 96, (4,), "walking",
                  ((1, 4, 1, 5), (1, 6, 4, 5), (1, 7, 6, 5)),
                  words=("sneak", "sneaks", "sneaking", "tiptoe", "tiptoes", "creep", "creeps", "creeping",
                         "mysterious", "mystery", "sly", "prowl", "lurk", "hallway", "spy", "stealth")),
    "chase": Mood("minor", (138, 176), 152, (4,), "ostinato",
                  ((1, 6, 7, 1), (1, 4, 5, 1), (1, 6, 4, 5)), chords_per_bar=1,
                  words=("chase", "chases", "chasing", "run", "runs", "running", "race", "races", "flee", "escape",
                         "rocket", "speed", "fast", "pursuit", "action", "drives", "car", "rushes", "whizzes")),
    "tense": Mood("minor", (66, 96), 80, (4,), "tremolo",
                  ((1, 2, 5, 1), (1, 6, 2, 5), (1, 4, 6, 5)),
                  words=("tense", "suspense", "danger", "threat", "dark", "creak", "creaks", "ominous", "eerie",
                         "fear", "scary", "horror", "slam", "slams", "shatter", "shatters")),
    "stormy": Mood("minor", (84, 116), 96, (4,), "pulse",
                   ((1, 6, 7, 1), (1, 4, 7, 3), (1, 6, 3, 7)),
                   words=("storm", "stormy", "thunder", "lightning", "rain", "tempest", "dramatic", "epic",
                          "battle", "war", "heroic", "night")),
}  # fmt: skip


@dataclass(frozen=True)
class Instrument:
    """A General MIDI instrument: ``program`` 0..127 (drums: ``drum=True``, program = kit), playable range, and
    ``release`` — a change of the SoundFont's release time in timecents (-1200 halves it), for instruments whose
    samples ring far longer than a player would let them in a score (a harp left undamped for nine seconds)."""

    program: int
    low: int
    high: int
    drum: bool = False
    release: float = 0.0
    linear: bool = False  # dark, sustained sounds: linear sample interpolation is inaudible and costs less


INSTRUMENTS: dict[str, Instrument] = {
    "flute": Instrument(73, 60, 96), "oboe": Instrument(68, 58, 91), "clarinet": Instrument(71, 50, 91),
    "bassoon": Instrument(70, 34, 72), "horn": Instrument(60, 41, 77), "trumpet": Instrument(56, 54, 86),
    "trombone": Instrument(57, 40, 72), "tuba": Instrument(58, 28, 58, linear=True), "strings": Instrument(48, 28, 96, linear=True),
    "tremolo strings": Instrument(44, 28, 96, linear=True), "pizzicato": Instrument(45, 28, 91), "harp": Instrument(46, 24, 103, release=-1800),
    "timpani": Instrument(47, 40, 55), "xylophone": Instrument(13, 65, 108), "orchestra hit": Instrument(55, 48, 72),
    "glockenspiel": Instrument(9, 79, 108), "celesta": Instrument(8, 60, 108), "warm pad": Instrument(89, 36, 96, release=-600, linear=True),
    "new age pad": Instrument(88, 36, 96, release=-600, linear=True), "choir": Instrument(52, 48, 79, linear=True), "fretless bass": Instrument(35, 28, 60, linear=True),
    "vibraphone": Instrument(11, 53, 89), "piano": Instrument(0, 21, 108), "marimba": Instrument(12, 45, 96),
    "taiko": Instrument(116, 36, 60), "woodblock": Instrument(115, 60, 84), "cello": Instrument(42, 36, 76, linear=True),
    "drums": Instrument(0, 27, 87, drum=True), "orchestral kit": Instrument(48, 27, 87, drum=True),
}  # fmt: skip

# General MIDI percussion keys used.
KICK, SNARE, CLOSED_HAT, OPEN_HAT, CRASH, RIDE, SPLASH, LOW_TOM, MID_TOM, HIGH_TOM = 36, 38, 42, 46, 49, 51, 55, 45, 47, 50
CONCERT_BD, SUS_CYMBAL = 35, 57  # acoustic bass drum, crash cymbal 2 (rolled for swells)


@dataclass(frozen=True)
class Ensemble:
    """Who plays what in one style and mood: ``melody`` instruments (the theme passes between them),
    ``harmony`` (chords), ``bass``, ``rhythm`` (ostinato/pattern, may be empty) and ``percussion``."""

    melody: tuple[str, ...]
    harmony: str
    bass: str
    rhythm: str = ""
    percussion: str = ""
    extra: tuple[str, ...] = field(default_factory=tuple)  # doublings (e.g. xylophone on a playful tune)


# What plays each hit gesture, per style: (instruments, ...). The first is the one whose onset is the hit.
HIT_INSTRUMENTS: dict[str, dict[str, tuple[str, ...]]] = {
    "orchestral": {"stab": ("orchestra hit", "trumpet", "timpani"), "pizzicato": ("pizzicato", "xylophone"),
                   "timpani": ("timpani", "orchestral kit", "trombone"), "run": ("harp", "flute"),
                   "swell": ("orchestral kit",)},
    "ambient": {"stab": ("timpani", "harp"), "pizzicato": ("harp", "celesta"), "timpani": ("timpani", "orchestral kit"),
                "run": ("harp", "celesta"), "swell": ("orchestral kit",)},
    "piano": {"stab": ("piano",), "pizzicato": ("piano",), "timpani": ("piano",), "run": ("piano",),
              "swell": ("piano",)},
    "percussion": {"stab": ("drums", "taiko"), "pizzicato": ("woodblock", "marimba"), "timpani": ("timpani", "drums"),
                   "run": ("marimba",), "swell": ("drums",)},
}  # fmt: skip

ENSEMBLES: dict[str, dict[str, Ensemble]] = {
    "orchestral": {
        "calm": Ensemble(("flute", "oboe", "clarinet"), "strings", "strings", rhythm="harp"),
        "playful": Ensemble(("clarinet", "bassoon", "flute"), "pizzicato", "tuba", extra=("xylophone",)),
        "sneak": Ensemble(("bassoon", "clarinet"), "strings", "pizzicato"),
        "chase": Ensemble(("trumpet", "horn"), "strings", "trombone", rhythm="strings", percussion="orchestral kit"),
        "tense": Ensemble(("horn", "clarinet"), "tremolo strings", "strings", percussion="timpani"),
        "stormy": Ensemble(("horn", "trombone"), "tremolo strings", "tuba", rhythm="strings", percussion="timpani"),
    },
    "ambient": {
        "calm": Ensemble(("celesta", "vibraphone"), "warm pad", "fretless bass", rhythm="harp"),
        "playful": Ensemble(("vibraphone", "celesta"), "new age pad", "fretless bass", rhythm="harp"),
        "sneak": Ensemble(("vibraphone",), "warm pad", "fretless bass"),
        "chase": Ensemble(("celesta",), "new age pad", "fretless bass", rhythm="vibraphone", percussion="timpani"),
        "tense": Ensemble(("vibraphone",), "warm pad", "fretless bass", extra=("choir",)),
        "stormy": Ensemble(("choir",), "warm pad", "fretless bass", percussion="timpani"),
    },
    "piano": {m: Ensemble(("piano",), "piano", "piano", rhythm="piano") for m in MOODS},
    "percussion": {
        "calm": Ensemble(("marimba",), "marimba", "timpani", percussion="drums"),
        "playful": Ensemble(("xylophone",), "marimba", "timpani", percussion="drums", extra=("woodblock",)),
        "sneak": Ensemble(("marimba",), "marimba", "timpani", percussion="drums", extra=("woodblock",)),
        "chase": Ensemble(("xylophone",), "marimba", "taiko", percussion="drums"),
        "tense": Ensemble(("marimba",), "marimba", "timpani", percussion="drums"),
        "stormy": Ensemble(("marimba",), "marimba", "taiko", percussion="drums"),
    },
}  # fmt: skip

STYLE_WORDS: dict[str, tuple[str, ...]] = {
    "orchestral": ("orchestral", "orchestra", "symphonic", "cartoon", "strings", "brass", "woodwinds"),
    "ambient": ("ambient", "pads", "pad", "atmospheric", "drone", "synth", "electronic"),
    "piano": ("piano", "keys"),
    "percussion": ("percussion", "drums", "drum", "percussive", "rhythmic", "taiko"),
}
STYLE_DESCRIPTIONS = {
    "orchestral": "orchestral cartoon score (woodwinds, brass, strings, harp, timpani, orchestra hits)",
    "ambient": "ambient pads (warm pads, celesta, vibraphone, fretless bass, soft timpani)",
    "piano": "solo piano",
    "percussion": "percussion (drum kit, timpani, taiko, marimba, xylophone, woodblock)",
}


def ensemble(style: str, mood: str) -> Ensemble:
    return ENSEMBLES[style][mood]


def section_instruments(style: str, mood: str) -> list[str]:
    """Every instrument a section of this style and mood may use (its ensemble and its hit instruments)."""
    e = ensemble(style, mood)
    names = [*e.melody, e.harmony, e.bass, e.rhythm, e.percussion, *e.extra]
    return list(dict.fromkeys(n for n in names if n))
