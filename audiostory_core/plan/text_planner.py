"""The no-LLM planner for text → long audio.

Without the AudioStory LLM we still want its storyline reasoning: split the instruction into sequential
sub-events ("rain, then thunder, then a car passes"), honour durations the user spelled out ("for 10
seconds"), give the rest of the time by what each sound is (a texture like rain runs longer than a one-shot
like a door slam), and let ``reconcile_sequence`` make the timings add up exactly with no event over 30 s.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import PlanError
from ..request import StoryRequest
from .base import Planner
from .reconcile import reconcile_sequence
from .types import Plan, SubEvent

# Sequencing words and punctuation that separate sub-events (longest first so "and then" beats "then").
_SEPARATORS = re.compile(
    r"\s*(?:;|,|(?<!\d)\.(?!\d)|\.(?=\s|$)|!|\?|\n"
    r"|\b(?:and then|after that|afterwards|followed by|then|next|finally|lastly|before)\b)\s*",
    re.IGNORECASE,
)
# "A after B" means B first: a clause of this shape is swapped.
_AFTER = re.compile(r"^(?P<a>.+?)\s+after\s+(?P<b>.+)$", re.IGNORECASE)
_LEADING_FILLER = re.compile(
    r"^(?:and|then|first|firstly|at first|at last|next|finally|lastly|also|with|there is|there are|"
    r"we hear|you hear|hear|the sound of|sound of|sounds of|the sounds of|(?:please\s+)?(?:generate|create|make|"
    r"produce|render|compose)(?:\s+(?:an?|the|some))?(?:\s+(?:long\s+)?(?:audio|soundtrack|sound|recording))?"
    r"(?:\s+(?:of|with|where|in which))?|audio of|a recording of)\b\s*",
    re.IGNORECASE,
)
_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40,
    "forty-five": 45, "sixty": 60, "a": 1, "an": 1, "half a": 0.5,
}
_WORDS = "|".join(sorted((re.escape(w) for w in _NUMBER_WORDS), key=len, reverse=True))
# "10 s", "2.5-second", "ten seconds", "a minute" (spelled-out numbers need a spelled-out unit: "as" is no duration).
_NU = (
    r"(?:(?P<num>\d+(?:\.\d+)?)\s*-?\s*(?P<unit>seconds?|secs?|s|minutes?|mins?)"
    r"|(?P<wnum>" + _WORDS + r")[\s-]+(?P<wunit>seconds?|secs?|minutes?|mins?))"
)
_DURATION_PATTERNS = [
    re.compile(r"\(\s*(?:for\s+)?(?:about\s+|around\s+|~\s*)?" + _NU + r"\s*\)", re.IGNORECASE),
    re.compile(r"\b(?:for|lasting|over)\s+(?:about\s+|around\s+|roughly\s+|~\s*)?" + _NU + r"\b", re.IGNORECASE),
    re.compile(r"\b" + _NU + r"\s+(?:of)\b", re.IGNORECASE),
    re.compile(r"\b" + _NU + r"\b", re.IGNORECASE),
]
_TOTAL_CLAUSE = re.compile(r"\b(?:total duration|in total|overall|the total|altogether)\b", re.IGNORECASE)

# How long a sound of each character naturally lasts, relative to the others (textures run, one-shots hit).
TEXTURE_WORDS = (
    "rain", "wind", "storm", "crowd", "traffic", "ambience", "ambient", "atmosphere", "background", "ocean", "sea",
    "waves", "river", "stream", "water", "fire", "crackling", "engine", "hum", "drone", "room tone", "forest",
    "birds", "birdsong", "insects", "crickets", "music", "city", "street", "cafe", "restaurant", "office",
    "machinery", "applause", "chatter", "murmur", "waterfall", "snoring", "breathing", "train", "rumble",
    "market", "playground", "static", "noise", "hiss", "running", "continuous", "steady", "ticking", "footsteps",
)
ONESHOT_WORDS = (
    "thunder", "slam", "knock", "bang", "gunshot", "shot", "crash", "bell", "ding", "beep", "click", "pop", "clap",
    "scream", "shout", "explosion", "thud", "hit", "punch", "snap", "break", "shatter", "splash", "whoosh", "honk",
    "bark", "meow", "cough", "sneeze", "zap", "boom", "drop", "falls", "slams", "closes", "opens", "doorbell",
)
TEXTURE_WEIGHT, MEDIUM_WEIGHT, ONESHOT_WEIGHT = 3.0, 2.0, 1.0


@dataclass
class Clause:
    """One sub-event read from the instruction: what it is and, if the user said so, how long."""

    caption: str
    duration: float | None = None

    @property
    def weight(self) -> float:
        return sound_weight(self.caption)


def sound_weight(caption: str) -> float:
    """Relative natural length: textures (rain, crowd) > unknown > one-shots (door slam, thunder clap)."""
    text = caption.lower()
    texture = any(re.search(rf"\b{re.escape(w)}", text) for w in TEXTURE_WORDS)
    oneshot = any(re.search(rf"\b{re.escape(w)}", text) for w in ONESHOT_WORDS)
    if texture and not oneshot:
        return TEXTURE_WEIGHT
    if oneshot and not texture:
        return ONESHOT_WEIGHT
    return MEDIUM_WEIGHT


def parse_instruction(instruction: str) -> list[Clause]:
    """Split an instruction into ordered clauses and read any explicit duration out of each."""
    clauses: list[Clause] = []
    for piece in _SEPARATORS.split(instruction or ""):
        piece = (piece or "").strip(" \t\"'-–—:()")
        if not piece or _TOTAL_CLAUSE.search(piece):
            continue
        duration, piece = _take_duration(piece)
        after = _AFTER.match(piece)
        parts = [after.group("b"), after.group("a")] if after else [piece]
        for k, part in enumerate(parts):
            caption = _clean_caption(part)
            if not caption:
                if duration is not None and clauses and clauses[-1].duration is None:
                    clauses[-1].duration = duration  # "rain, for 10 seconds" → the duration belongs to rain
                continue
            # In "A after B" an explicit duration most likely belongs to A, which now plays second.
            own = duration if (k == len(parts) - 1) else None
            clauses.append(Clause(caption, own))
    return clauses


def _take_duration(text: str) -> tuple[float | None, str]:
    for pat in _DURATION_PATTERNS:
        m = pat.search(text)
        if not m:
            continue
        if m.group("num") is not None:
            value, unit = float(m.group("num")), m.group("unit")
        else:
            value, unit = float(_NUMBER_WORDS[m.group("wnum").lower()]), m.group("wunit")
        if unit.lower().startswith("m"):
            value *= 60.0
        if value <= 0:
            continue
        return value, (text[: m.start()] + " " + text[m.end():]).strip()
    return None, text


def _clean_caption(text: str) -> str:
    text = " ".join(text.split()).strip(" ,.;:-–—()\"'")
    for _ in range(3):
        text = _LEADING_FILLER.sub("", text).strip(" ,.;:-")
    return text


class TextPlanner(Planner):
    """Plans ``mode == "text"`` requests without a model: sequential events on the narrative layer."""

    name = "text"

    def __init__(self, *, max_event: float = 30.0, min_event: float = 0.5, music: str = "off",
                 music_style: str = "auto") -> None:
        """``music``: "off", "auto" (clauses asking for music are composed, see ``music.planner.score_story``),
        "on" (a score under the whole story) or "only"."""
        from ..music.planner import check_music_mode

        self.max_event = float(max_event)
        self.min_event = float(min_event)
        self.music = check_music_mode(music)
        self.music_style = music_style

    def plan(self, request: StoryRequest) -> Plan:
        if not request.instruction or not request.instruction.strip():
            raise PlanError("the text planner needs an instruction, e.g. 'rain, then thunder, then a car passes'")
        total = float(request.duration)
        clauses = parse_instruction(request.instruction) or [Clause(_clean_caption(request.instruction) or "ambience")]
        events = reconcile_sequence(
            list(zip((c.caption for c in clauses), proposed_durations(clauses, total))),
            total,
            max_event=self.max_event,
            min_event=self.min_event,
        )
        reasoning = storyline_reasoning(events, total)
        score = None
        if self.music != "off":
            from ..music.planner import describe_score, score_story

            events, score = score_story(events, total, mode=self.music, style=self.music_style,
                                        instruction=request.instruction)
            if score is not None:
                events.sort(key=lambda e: (e.start, e.layer))
                reasoning += "\n" + describe_score(score)
        return Plan(reasoning=reasoning, events=events, duration=total, planner=self.name, score=score)


def proposed_durations(clauses: list[Clause], total: float) -> list[float]:
    """Explicit durations as given; the time they leave split among the others by ``sound_weight``.

    When explicit durations already use up the total, the others get time in proportion to the average explicit
    duration, and ``reconcile_sequence`` rescales everything to fit.
    """
    explicit = sum(c.duration for c in clauses if c.duration is not None)
    free = [c for c in clauses if c.duration is None]
    weights = sum(c.weight for c in free)
    left = total - explicit
    if free and left > 0:
        unit = left / weights
    elif free:
        n_explicit = len(clauses) - len(free)
        unit = explicit / max(n_explicit, 1) / MEDIUM_WEIGHT
    else:
        unit = 0.0
    return [c.duration if c.duration is not None else c.weight * unit for c in clauses]


def storyline_reasoning(events: list[SubEvent], total: float) -> str:
    """The paper's storyline reasoning: how many events, then each one's start/end and description."""
    lines = [f"The {total:.2f}-second audio contains {len(events)} event(s), in order:"]
    for i, e in enumerate(events):
        lines.append(f"Event {i + 1} ({e.start:.2f}–{e.end:.2f} s, {e.duration:.2f} s): {e.caption}.")
    return "\n".join(lines)
