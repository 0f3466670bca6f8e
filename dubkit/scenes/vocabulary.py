"""Sound-relevant labels for zero-shot tagging: what is on screen that makes (or hints at) a sound.

Three groups, because a sound designer thinks in three layers: the *place* sets the ambience bed, the *object*
is the sound source, the *action* is the event (a hit, a pass, a splash). Each label carries:

- ``prompt``: what the picture shows, filled into the group's templates for CLIP ("a photo of {}.");
- ``text``: how the label reads inside a scene description ("a street at night", "driving past");
- ``sound``: a short phrase of what it sounds like ("distant traffic hum"), so the planner and the foley
  renderer's sentence matching get sound words, not just picture words.
"""
from __future__ import annotations

from dataclasses import dataclass, field

GROUPS = ("place", "object", "action")


@dataclass(frozen=True)
class Label:
    name: str  # unique key, the one reported in ``Scene.tags``
    group: str  # "place" | "object" | "action"
    prompt: str  # visual phrase filled into the group's templates
    sound: str  # what it sounds like
    text: str = ""  # phrase used in descriptions; defaults to ``prompt``

    @property
    def phrase(self) -> str:
        return self.text or self.prompt


@dataclass(frozen=True)
class Vocabulary:
    """An ordered set of labels with one list of prompt templates per group."""

    labels: tuple[Label, ...]
    templates: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [lab.name for lab in self.labels]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"vocabulary labels must be unique; repeated: {', '.join(dupes)}")
        for lab in self.labels:
            if lab.group not in GROUPS:
                raise ValueError(f"label {lab.name!r} has group {lab.group!r}; use one of {', '.join(GROUPS)}")
            if not self.templates.get(lab.group):
                raise ValueError(f"no prompt templates for group {lab.group!r}")
        for group, temps in self.templates.items():
            for t in temps:
                if "{}" not in t:
                    raise ValueError(f"template {t!r} of group {group!r} has no '{{}}' for the label")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def names(self) -> list[str]:
        return [lab.name for lab in self.labels]

    def group(self, group: str) -> list[Label]:
        return [lab for lab in self.labels if lab.group == group]

    def __getitem__(self, name: str) -> Label:
        for lab in self.labels:
            if lab.name == name:
                return lab
        raise KeyError(name)

    def subset(self, names: list[str]) -> "Vocabulary":
        """A smaller vocabulary (same templates), e.g. to tag only what a project cares about."""
        return Vocabulary(tuple(self[n] for n in names), self.templates)


TEMPLATES: dict[str, tuple[str, ...]] = {
    "place": ("a photo of {}.", "a cartoon of {}.", "a film still of {}."),
    "object": ("a photo of {}.", "a cartoon of {}.", "a video frame showing {}."),
    "action": ("a photo of {}.", "a cartoon of {}.", "a video frame of {}."),
}

# (name, prompt, sound[, text])
_PLACES = [
    ("street", "a city street", "traffic and footsteps", "a city street"),
    ("night city", "a city street at night", "distant traffic hum", "a street at night"),
    ("highway", "a highway with cars", "steady road roar", "a highway"),
    ("forest", "a forest", "birdsong and rustling leaves", "a forest"),
    ("jungle", "a dense jungle", "insects, birds and dripping leaves", "a jungle"),
    ("park", "a green park", "birds, distant voices, light wind", "a park"),
    ("field", "an open grass field", "wind over grass, crickets", "an open field"),
    ("mountain", "snowy mountains", "cold howling wind", "the mountains"),
    ("desert", "a sandy desert", "dry wind, hissing sand", "a desert"),
    ("beach", "a sandy beach", "waves breaking on the shore, gulls", "a beach"),
    ("ocean", "the open ocean", "rolling waves and swell", "the open sea"),
    ("river", "a river", "flowing water", "a riverbank"),
    ("lake", "a calm lake", "gentle lapping water", "a lakeside"),
    ("waterfall", "a waterfall", "roaring falling water", "a waterfall"),
    ("cave", "a dark cave", "echoing drips, low rumble", "a cave"),
    ("underwater", "an underwater scene", "muffled bubbles and gurgles", "underwater"),
    ("sky", "a blue sky with clouds", "open air, high wind", "the open sky"),
    ("space", "outer space with stars", "deep low drone", "outer space"),
    ("kitchen", "a kitchen", "fridge hum, clinking dishes", "a kitchen"),
    ("living room", "a living room", "quiet room tone, clock ticking", "a living room"),
    ("bedroom", "a bedroom", "quiet room tone", "a bedroom"),
    ("bathroom", "a bathroom", "tiled echo, dripping tap", "a bathroom"),
    ("office", "an office", "keyboard typing, air conditioning hum", "an office"),
    ("classroom", "a classroom", "chatter, chairs scraping", "a classroom"),
    ("restaurant", "a restaurant", "cutlery clinks, murmuring diners", "a restaurant"),
    ("bar", "a crowded bar", "glasses clinking, loud chatter", "a bar"),
    ("shop", "a shop interior", "shop murmur, till beeps", "a shop"),
    ("factory", "a factory", "machines clanking and humming", "a factory"),
    ("construction site", "a construction site", "drills, hammering, engines", "a construction site"),
    ("stadium", "a sports stadium", "roaring crowd", "a stadium"),
    ("concert", "a concert stage", "loud music, cheering crowd", "a concert"),
    ("train station", "a train station", "announcements, rolling trains", "a train station"),
    ("airport", "an airport", "jet engines, terminal announcements", "an airport"),
    ("harbor", "a harbor with boats", "creaking boats, gulls, water slaps", "a harbor"),
    ("farm", "a farm", "animals, tractor in the distance", "a farm"),
    ("village", "a quiet village", "distant dogs, church bells, birds", "a village"),
    ("church", "the inside of a church", "large reverberant hush", "a church"),
    ("hospital", "a hospital room", "monitor beeps, quiet corridor", "a hospital"),
    ("battlefield", "a battlefield", "distant gunfire and explosions", "a battlefield"),
    ("swimming pool", "a swimming pool", "splashes and echoing voices", "a swimming pool"),
    ("playground", "a playground", "children playing and shouting", "a playground"),
    ("snowy landscape", "a snowy landscape", "muffled stillness, crunching snow", "a snowy landscape"),
]

_OBJECTS = [
    ("ball", "a ball", "rubbery bounces"),
    ("door", "a door", "creaks and thuds"),
    ("car", "a car", "engine rumble, tyre hiss"),
    ("truck", "a truck", "heavy diesel engine"),
    ("motorcycle", "a motorcycle", "revving engine"),
    ("bicycle", "a bicycle", "chain clicks, bell"),
    ("bus", "a bus", "engine idle, air brakes"),
    ("train", "a train", "rattling wheels on rails, horn"),
    ("airplane", "an airplane", "jet engine roar"),
    ("helicopter", "a helicopter", "chopping rotor blades"),
    ("boat", "a boat", "outboard motor, water slaps"),
    ("ship", "a large ship", "deep horn, engine throb"),
    ("glass", "a drinking glass", "glassy clinks"),
    ("bottle", "a bottle", "glass clink, liquid glug"),
    ("plate", "plates and dishes", "ceramic clatter"),
    ("pot", "a cooking pot", "metal clang, bubbling"),
    ("knife", "a knife", "chopping, metallic scrape"),
    ("phone", "a phone", "ringing, buzzing"),
    ("computer", "a computer", "keyboard clicks, fan hum"),
    ("television", "a television", "muffled TV chatter"),
    ("clock", "a clock", "ticking, chimes"),
    ("bell", "a bell", "ringing chime"),
    ("alarm", "an alarm siren", "wailing siren"),
    ("drum", "a drum", "drum hits"),
    ("guitar", "a guitar", "strummed strings"),
    ("piano", "a piano", "piano notes"),
    ("gun", "a gun", "gunshot crack"),
    ("sword", "a sword", "metal swish and clash"),
    ("hammer", "a hammer", "hammer blows"),
    ("saw", "a saw", "sawing rasp"),
    ("chair", "a chair", "scraping, creaking wood"),
    ("table", "a table", "wooden knocks"),
    ("window", "a window", "rattling pane"),
    ("paper", "paper sheets", "paper rustle"),
    ("book", "a book", "page flips, soft thud"),
    ("bag", "a bag", "fabric rustle, zipper"),
    ("keys", "a bunch of keys", "jingling keys"),
    ("coins", "coins", "metallic coin jingle"),
    ("box", "a cardboard box", "hollow cardboard thump"),
    ("balloon", "a balloon", "rubber squeak, pop"),
    ("robot", "a robot", "servo whirs, metal clanks"),
    ("fireworks", "fireworks", "whistles and bangs"),
    ("person", "a person", "footsteps and clothing rustle"),
    ("child", "a child", "small footsteps, giggles"),
    ("crowd", "a crowd of people", "crowd murmur"),
    ("dog", "a dog", "barking, panting"),
    ("cat", "a cat", "meowing, purring"),
    ("bird", "a bird", "chirping, wing flaps"),
    ("horse", "a horse", "hooves and neighing"),
    ("cow", "a cow", "mooing"),
    ("chicken", "a chicken", "clucking"),
    ("duck", "a duck", "quacking"),
    ("insect", "an insect", "buzzing"),
    ("frog", "a frog", "croaking"),
    ("lion", "a lion", "deep roar"),
    ("elephant", "an elephant", "trumpeting"),
    ("fish", "a fish", "bubbles and small splashes"),
    ("monster", "a cartoon monster", "growls and heavy steps"),
    ("water", "water", "running water"),
    ("rain", "rain", "rain patter"),
    ("snow", "falling snow", "soft muffled hush"),
    ("fire", "a fire", "crackling flames"),
    ("smoke", "smoke", "low hiss"),
    ("wind", "trees bending in the wind", "gusting wind"),
    ("thunderstorm", "a thunderstorm with lightning", "thunder and heavy rain"),
    ("waves", "ocean waves", "crashing surf"),
    ("rock", "a rock", "stony knock"),
    ("tree", "a tree", "rustling leaves, creaking branches"),
    ("leaves", "fallen leaves", "crunching leaves"),
]

_ACTIONS = [
    ("bouncing", "something bouncing up and down", "rhythmic bounces", "bouncing"),
    ("falling", "something falling down", "a falling whoosh", "falling"),
    ("hitting the ground", "something hitting the ground", "a heavy impact thud", "hitting the ground"),
    ("colliding", "two things colliding", "a crash", "colliding"),
    ("crashing", "a crash", "a loud crash of debris", "crashing"),
    ("breaking", "something breaking into pieces", "shattering and debris", "breaking"),
    ("shattering glass", "glass shattering", "glass shattering", "shattering"),
    ("slamming", "a door slamming shut", "a hard slam", "slamming shut"),
    ("opening", "a door opening", "a creaking open", "opening"),
    ("knocking", "someone knocking on a door", "knocks", "knocking"),
    ("explosion", "an explosion", "a deep explosion boom", "exploding"),
    ("shooting", "someone shooting a gun", "gunshots", "shooting"),
    ("punching", "someone punching", "punch impacts", "punching"),
    ("kicking", "someone kicking a ball", "a kick thump", "kicking"),
    ("throwing", "someone throwing something", "a throw whoosh", "being thrown"),
    ("running", "someone running", "fast footsteps", "running"),
    ("walking", "someone walking", "footsteps", "walking"),
    ("jumping", "someone jumping", "a jump and landing", "jumping"),
    ("dancing", "people dancing", "music and footsteps", "dancing"),
    ("fighting", "people fighting", "scuffles and hits", "fighting"),
    ("talking", "people talking", "conversation", "talking"),
    ("shouting", "someone shouting", "shouting", "shouting"),
    ("laughing", "people laughing", "laughter", "laughing"),
    ("crying", "someone crying", "sobbing", "crying"),
    ("singing", "someone singing", "singing voice", "singing"),
    ("clapping", "people clapping", "applause", "clapping"),
    ("cheering", "a crowd cheering", "cheering", "cheering"),
    ("eating", "someone eating", "chewing and cutlery", "eating"),
    ("cooking", "someone cooking", "sizzling pan", "cooking"),
    ("pouring", "pouring a liquid", "liquid pouring", "pouring"),
    ("splashing", "water splashing", "splashes", "splashing"),
    ("swimming", "someone swimming", "strokes through water", "swimming"),
    ("dripping", "water dripping", "drips", "dripping"),
    ("burning", "something burning", "roaring flames", "burning"),
    ("driving past", "a car driving past", "a passing whoosh", "driving past"),
    ("speeding", "a vehicle speeding fast", "engine scream and whoosh", "speeding"),
    ("braking", "a car braking hard", "screeching tyres", "braking"),
    ("flying", "something flying through the air", "a flyby whoosh", "flying"),
    ("spinning", "something spinning", "a whirring spin", "spinning"),
    ("rolling", "something rolling", "a rolling rumble", "rolling"),
    ("sliding", "something sliding", "a scraping slide", "sliding"),
    ("typing", "someone typing on a keyboard", "keyboard clatter", "typing"),
    ("writing", "someone writing", "pen scratching", "writing"),
    ("ringing", "a phone ringing", "ringing", "ringing"),
    ("barking", "a dog barking", "barks", "barking"),
    ("flapping wings", "a bird flapping its wings", "wing flaps", "flapping its wings"),
    ("sleeping", "someone sleeping", "quiet breathing", "sleeping"),
    ("hammering", "someone hammering a nail", "hammer blows", "hammering"),
    ("digging", "someone digging", "shovel scrapes in dirt", "digging"),
    ("climbing", "someone climbing", "grunts and scrapes", "climbing"),
]


def _labels(rows: list[tuple], group: str) -> list[Label]:
    return [Label(r[0], group, r[1], r[2], r[3] if len(r) > 3 else "") for r in rows]


DEFAULT_VOCABULARY = Vocabulary(
    tuple(_labels(_PLACES, "place") + _labels(_OBJECTS, "object") + _labels(_ACTIONS, "action")),
    TEMPLATES,
)
