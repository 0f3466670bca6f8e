"""AudioStory's vocabulary additions, prompt format and output parsing.

The published model (TencentARC/AudioStory) adds 612 tokens to Qwen2.5's vocabulary, in a fixed order (the order
of its ``tokenizer/added_tokens.json``), so a published checkpoint's embedding rows line up only when the tokens
are added in that same order. The LLM answers in an interleaved format::

    <|think|> reasoning <|/think|>
    <|gen|> caption <timestamp>12.5</timestamp> <t5><t5_00000>…<t5_000NN></t5> <aud><aud_00000>…<aud_000MM></aud>
    <|gen|> …

``parse_output`` reads that format from text and tolerates anything a model (or a person) may get wrong.
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

# Markup tokens.
SEM_OPEN, SEM_CLOSE = "<t5>", "</t5>"  # semantic ("bridge") query run
RES_OPEN, RES_CLOSE = "<aud>", "</aud>"  # residual query run
GEN_OPEN, GEN_CLOSE = "<|gen|>", "<|/gen|>"  # one event
THINK_OPEN, THINK_CLOSE = "<|think|>", "<|/think|>"  # storyline reasoning
TS_OPEN, TS_CLOSE = "<timestamp>", "</timestamp>"  # event duration in seconds
VIDEO_PAD = "<video_padding>"  # placeholder for non-text inputs spliced into the input embeddings

SEMANTIC_SLOTS = 100  # <t5_00000> … <t5_00099>
RESIDUAL_SLOTS = 501  # <aud_00000> … <aud_00500>


def semantic_token(i: int) -> str:
    return f"<t5_{i:05d}>"


def residual_token(i: int) -> str:
    return f"<aud_{i:05d}>"


def added_tokens() -> list[str]:
    """The 612 added tokens in the published order (ids 151665… on Qwen2.5, vocabulary 152,277)."""
    return (
        [SEM_CLOSE, VIDEO_PAD, TS_OPEN, TS_CLOSE, SEM_OPEN]
        + [semantic_token(i) for i in range(SEMANTIC_SLOTS)]
        + [RES_OPEN, RES_CLOSE]
        + [residual_token(i) for i in range(RESIDUAL_SLOTS)]
        + [GEN_OPEN, GEN_CLOSE, THINK_OPEN, THINK_CLOSE]
    )


# Chat markup (Qwen2 / ChatML).
IM_START, IM_END, END_OF_TEXT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
SYSTEM_PROMPT = "You are a helpful assistant."

# The 20 lead-in phrases the published inference script draws from, in its order: it calls
# ``random.seed(seed)`` and then ``random.choice`` over this list, so the seed decides the phrase.
LEAD_INS = (
    "Create a long-form audio composition that explores ",
    "I'd like an extended audio track with rich details of ",
    "Craft an immersive soundscape that slowly unfolds ",
    "Please produce a comprehensive recording capturing every aspect of ",
    "Generate a detailed, drawn-out audio that brings to life ",
    "Let's design a textured audio piece highlighting the nuances of ",
    "Kindly fashion a lengthy audio journey through ",
    "Devise a long-form audio narrative of ",
    "Develop a gradually developing audio with meticulous attention to ",
    "Imagine and produce a vivid audio experience of ",
    "Construct a detailed soundscape that tells the story of ",
    "Please generate a sustained audio track filled with ",
    "Produce an in-depth, multi-layered audio that portrays ",
    "Design a descriptive audio capturing the essence of ",
    "Create a nuanced, extended audio that conveys ",
    "I'd like to commission a long-form audio depicting ",
    "Fashion a richly detailed audio recording of ",
    "Propose a detailed, immersive audio that showcases ",
    "Generate an elaborate audio piece focusing on ",
    "Develop a comprehensive audio that fully represents ",
)

# A Qwen2-style chat template for tokenizers we build ourselves (the real Qwen tokenizer carries its own).
CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] != 'system' %}"
    "{{- '<|im_start|>system\\n" + SYSTEM_PROMPT + "<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def format_duration(seconds: float) -> str:
    """Event durations inside ``<timestamp>`` (training targets): a Python float to two decimals (``12.35``)."""
    return repr(round(float(seconds), 2))


def prompt_duration(seconds: float) -> str:
    """The total duration as the published prompt writes it: ``f"{float(x)}"`` (``50.0``, ``12.345``)."""
    return repr(float(seconds))


def pick_lead_in(seed: int = 0, index: int | None = None) -> str:
    """One of ``LEAD_INS``: ``index`` if given, else the published choice, ``random.seed(seed)`` then
    ``random.choice`` (a private ``random.Random(seed)``, so Python's global generator is left alone)."""
    if index is not None:
        return LEAD_INS[index % len(LEAD_INS)]
    return random.Random(seed).choice(LEAD_INS)


def user_message(description: str, duration: float, lead_in: int | None = None, seed: int = 0) -> str:
    """Lead-in + description + " The total duration is {X} seconds." (the published user turn, character for
    character: the description as given, no full stop added; only the joined text's ends are stripped)."""
    text = (pick_lead_in(seed, lead_in) + description).strip()
    return f"{text} The total duration is {prompt_duration(duration)} seconds."


def build_prompt(
    description: str, duration: float, lead_in: int | None = None, prefix: str = "", seed: int = 0,
) -> str:
    """The full prompt string: system turn, user turn, and the assistant turn opened with ``<|think|>``.

    ``prefix`` goes at the start of the user turn (e.g. placeholder tokens for an audio prompt); ``seed`` picks
    the lead-in as the published script does (``lead_in`` picks it by index instead).
    """
    return (
        f"{IM_START}system\n{SYSTEM_PROMPT}{IM_END}\n"
        f"{IM_START}user\n{prefix}{user_message(description, duration, lead_in, seed)}{IM_END}\n"
        f"{IM_START}assistant\n{THINK_OPEN}"
    )


# ----------------------------------------------------------------------------------------------- parsing


@dataclass
class ParsedEvent:
    """One ``<|gen|>`` block. ``duration`` is None when the timestamp is missing or not a positive number;
    ``semantic``/``residual`` count the query tokens found in order, ``*_closed`` whether the run was closed."""

    caption: str
    duration: float | None
    semantic: int = 0
    residual: int = 0
    semantic_closed: bool = False
    residual_closed: bool = False

    def complete(self, n_semantic: int, n_residual: int) -> bool:
        """Whether the block carries the full query runs a condition can be computed from."""
        return (
            self.semantic == n_semantic and self.residual == n_residual and self.semantic_closed and self.residual_closed
        )


@dataclass
class ParsedOutput:
    reasoning: str
    events: list[ParsedEvent]


_ANY_TAG = re.compile(r"<\|?/?[a-z_0-9]+\|?>")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d*)?|[-+]?\.\d+")


def clean_text(text: str) -> str:
    """Drop every markup/chat tag and collapse whitespace."""
    return " ".join(_ANY_TAG.sub(" ", text).split())


def parse_duration(text: str) -> float | None:
    """The first number in ``text`` as seconds, or None if there is none or it is not positive and finite."""
    m = _NUMBER.search(text)
    if not m:
        return None
    try:
        value = float(m.group(0))
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def _query_run(block: str, open_tag: str, close_tag: str, slot: re.Pattern) -> tuple[int, bool]:
    """How many slot tokens follow ``open_tag`` in order (0, 1, 2, …), and whether ``close_tag`` ends the run."""
    start = block.find(open_tag)
    if start < 0:
        return 0, False
    pos, count = start + len(open_tag), 0
    while True:
        m = slot.match(block, pos)
        if not m or int(m.group(1)) != count:
            break
        count, pos = count + 1, m.end()
    return count, block.startswith(close_tag, pos)


_SEM_SLOT = re.compile(r"\s*<t5_(\d{5})>")
_RES_SLOT = re.compile(r"\s*<aud_(\d{5})>")


def parse_output(text: str) -> ParsedOutput:
    """Read reasoning and events from generated text (special tokens kept). Never raises.

    Reasoning is what precedes ``<|/think|>`` (or the first ``<|gen|>``); each ``<|gen|>`` starts an event whose
    caption is the text before its first tag and whose duration is the number inside ``<timestamp>``.
    """
    text = text.replace(THINK_OPEN, " ")
    if THINK_CLOSE in text:
        reasoning, rest = text.split(THINK_CLOSE, 1)
    elif GEN_OPEN in text:
        reasoning, rest = text.split(GEN_OPEN, 1)
        rest = GEN_OPEN + rest
    else:
        return ParsedOutput(clean_text(text), [])
    events = []
    for block in rest.split(GEN_OPEN)[1:]:
        block = block.split(GEN_CLOSE, 1)[0]
        first_tag = _ANY_TAG.search(block)
        caption = clean_text(block[: first_tag.start()] if first_tag else block)
        duration = None
        ts = block.find(TS_OPEN)
        if ts >= 0:
            inner = block[ts + len(TS_OPEN) :]
            end = inner.find("<")
            duration = parse_duration(inner if end < 0 else inner[:end])
        n_sem, sem_closed = _query_run(block, SEM_OPEN, SEM_CLOSE, _SEM_SLOT)
        n_res, res_closed = _query_run(block, RES_OPEN, RES_CLOSE, _RES_SLOT)
        events.append(ParsedEvent(caption, duration, n_sem, n_res, sem_closed, res_closed))
    return ParsedOutput(clean_text(reasoning), events)


def split_timestamp(text: str) -> tuple[str, float | None]:
    """The published script's reading of one event's text (``caption<timestamp>12.5</timestamp>``): the text
    outside the first ``<timestamp>…</timestamp>`` pair (stripped) and the number inside it as Python's
    ``float`` reads it, or None when the pair is missing, out of order, empty or not a number."""
    start, end = text.find(TS_OPEN), text.find(TS_CLOSE)
    if start < 0 or end < 0 or end < start:
        return text.strip(), None
    content = (text[:start] + text[end + len(TS_CLOSE) :]).strip()
    inner = text[start + len(TS_OPEN) : end].strip()
    try:
        return content, float(inner) if inner else None
    except ValueError:
        return content, None


def render_event(caption: str, duration: float, n_semantic: int, n_residual: int) -> str:
    """One event in the model's output format (training targets, tests)."""
    return (
        f"{GEN_OPEN}{caption}{TS_OPEN}{format_duration(duration)}{TS_CLOSE}"
        + SEM_OPEN
        + "".join(semantic_token(i) for i in range(n_semantic))
        + SEM_CLOSE
        + RES_OPEN
        + "".join(residual_token(i) for i in range(n_residual))
        + RES_CLOSE
    )


# ----------------------------------------------------------------------------------------------- tokenizers

# A small corpus for the offline tiny tokenizer: sound-design vocabulary, digits and punctuation, so prompts
# and captions tokenize into a sensible number of pieces.
_TINY_CORPUS = (
    "You are a helpful assistant. The total duration is 12.5 seconds. Scene 1 from 0.00s to 4.20s: "
    "a dog barks in the rain while thunder rolls in the distance. footsteps on gravel, a door slams, "
    "birds chirp at dawn, wind howls through the trees, a car engine starts and drives away. "
    "crowd cheering, glass breaking, water splashing, a cat meows, music plays softly, bells ring. "
    "first, second, third event; then, finally. 0 1 2 3 4 5 6 7 8 9 10 15 20 25 30 . , : ; ' \" ( ) - ! ?"
)


def build_tiny_tokenizer(vocab_size: int = 512, with_audiostory_tokens: bool = True):
    """A byte-level BPE tokenizer trained in memory, with Qwen's chat tokens, template and AudioStory's tokens.

    No Qwen tokenizer is available offline; this stands in for it in tests and tiny models. Byte-level, so it can
    encode any text; digits are split one per token as in Qwen. ``with_audiostory_tokens=False`` gives the
    "base Qwen" stand-in (chat tokens only), as a Qwen folder would hold it before AudioStory's additions.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"\d"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([_TINY_CORPUS] * 4, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=IM_END, pad_token=END_OF_TEXT, clean_up_tokenization_spaces=False
    )
    fast.chat_template = CHAT_TEMPLATE
    if with_audiostory_tokens:
        add_audiostory_tokens(fast)
    return fast


def add_audiostory_tokens(tokenizer) -> int:
    """Add the published tokens (in the published order) that ``tokenizer`` lacks; returns how many were added."""
    vocab = tokenizer.get_vocab()
    missing = [t for t in added_tokens() if t not in vocab]
    return tokenizer.add_tokens(missing) if missing else 0


@dataclass(frozen=True)
class TokenIds:
    """Ids of the markup tokens in one tokenizer, looked up once."""

    sem_open: int
    sem_close: int
    res_open: int
    res_close: int
    gen_open: int
    gen_close: int
    think_close: int
    ts_open: int
    ts_close: int
    eos: int
    video_pad: int
    semantic: tuple[int, ...]
    residual: tuple[int, ...]

    @classmethod
    def from_tokenizer(cls, tokenizer, n_semantic: int, n_residual: int) -> "TokenIds":
        vocab = tokenizer.get_vocab()

        def tid(token: str) -> int:
            if token not in vocab:
                from ..errors import CheckpointError

                raise CheckpointError(
                    f"the tokenizer lacks AudioStory's token {token!r}; add them with add_audiostory_tokens()"
                )
            return vocab[token]

        return cls(
            sem_open=tid(SEM_OPEN),
            sem_close=tid(SEM_CLOSE),
            res_open=tid(RES_OPEN),
            res_close=tid(RES_CLOSE),
            gen_open=tid(GEN_OPEN),
            gen_close=tid(GEN_CLOSE),
            think_close=tid(THINK_CLOSE),
            ts_open=tid(TS_OPEN),
            ts_close=tid(TS_CLOSE),
            eos=tid(IM_END),
            video_pad=tid(VIDEO_PAD),
            semantic=tuple(tid(semantic_token(i)) for i in range(n_semantic)),
            residual=tuple(tid(residual_token(i)) for i in range(n_residual)),
        )
