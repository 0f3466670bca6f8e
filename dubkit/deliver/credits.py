"""Credits for what a soundtrack is made of: ``credits.txt`` for people, ``licences.json`` for tools.

Every recording heard in the soundtrack is listed once with its source, licence, attribution and the events that
use it; synthesised and generated events are counted. When any clip is copyleft (CC-BY-SA, GPL, ...) both files
say that the soundtrack — and a video it is synced to — inherits that licence.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from audiostory_core.render.base import Clip

CREDITS_VERSION = 1


def sound_source(clip: Clip) -> tuple[str, str]:
    """(what made this clip, its licence) in an editor's words: the library clips heard in it with their
    licences, "procedural" (dubkit's foley bank), "music" (the composer), "DiT" (the model) or "input" (a
    continuation playing on the user's own recording)."""
    if clip.credits:
        names = ", ".join(dict.fromkeys(c.get("clip") or Path(c.get("path", "")).name for c in clip.credits))
        licences = ", ".join(dict.fromkeys(c.get("licence") or "unknown" for c in clip.credits))
        return f"library: {names}", licences
    kind, _, detail = clip.source.partition(":")
    if kind == "synth":
        return f"procedural ({detail})" if detail else "procedural", "dubkit (no third-party material)"
    if kind == "composer":
        return f"music ({detail.strip()})" if detail else "music", "dubkit score"
    if kind == "input":
        return "input (your recording, played on)", "yours"
    if kind == "dit":
        return "DiT", "generated"
    return clip.source or "unknown", "unknown"


def collect_credits(clips: Sequence[Clip]) -> dict:
    """The credits of ``clips`` as one JSON-ready dict (what ``licences.json`` holds)."""
    used: dict[str, dict] = {}
    procedural = generated = own = 0
    for index, clip in enumerate(clips):
        ev = clip.event
        if not clip.credits:
            if clip.source.startswith("synth:"):
                procedural += 1
            elif clip.source.startswith("input:"):
                own += 1
            else:
                generated += 1
            continue
        for credit in clip.credits:
            key = credit.get("path") or credit.get("clip", "")
            entry = used.setdefault(key, {
                "clip": credit.get("clip", ""), "source": credit.get("source", ""),
                "licence": credit.get("licence", ""), "licence_class": credit.get("licence_class", ""),
                "attribution": credit.get("attribution", ""), "url": credit.get("url", ""),
                "file": Path(key).name, "events": [],
            })
            entry["events"].append({"index": index, "start": round(float(ev.start), 3), "caption": ev.caption,
                                    "layer": ev.layer})
    counts: dict[str, int] = {}
    for entry in used.values():
        counts[entry["licence"]] = counts.get(entry["licence"], 0) + 1
    share_alike = sorted({e["licence"] for e in used.values() if e["licence_class"] == "sa"})
    return {
        "version": CREDITS_VERSION,
        "clips": sorted(used.values(), key=lambda e: (e["licence"], e["source"], e["clip"])),
        "licences": dict(sorted(counts.items())),
        "share_alike": share_alike,
        "procedural_events": procedural,
        "generated_events": generated,
        "input_events": own,
    }


def credits_text(data: dict, title: str = "") -> str:
    """``credits.txt``: the clips grouped by licence, each with its attribution and where it is used."""
    lines = [f"Sound credits{f' for {title}' if title else ''}", ""]
    if data["share_alike"]:
        lines += [f"NOTE: this soundtrack contains {', '.join(data['share_alike'])} material. Synced to picture it "
                  "makes the video an adaptation, which must be shared under the same licence, with the "
                  "attributions below.", ""]
    if not data["clips"]:
        lines.append("No third-party recordings are used.")
    by_licence: dict[str, list[dict]] = {}
    for entry in data["clips"]:
        by_licence.setdefault(entry["licence"] or "unknown", []).append(entry)
    for licence, entries in by_licence.items():
        lines.append(f"{licence} ({len(entries)} clip{'s' if len(entries) != 1 else ''})")
        for e in entries:
            when = ", ".join(f"{ev['start']:.2f} s" for ev in e["events"][:8])
            more = f" and {len(e['events']) - 8} more" if len(e["events"]) > 8 else ""
            text = e["attribution"] or e["clip"]
            lines.append(f"  - {text}" + (f" <{e['url']}>" if e["url"] and e["url"] not in text else ""))
            lines.append(f"    source: {e['source']}; file: {e['file']}; used at {when}{more}")
        lines.append("")
    if data["procedural_events"]:
        lines.append(f"{data['procedural_events']} event(s) synthesised by dubkit's procedural foley bank "
                     "(no third-party material).")
    if data["generated_events"]:
        lines.append(f"{data['generated_events']} event(s) generated by a model.")
    if data.get("input_events"):
        lines.append(f"{data['input_events']} event(s) play on the input recording itself (your material).")
    return "\n".join(lines).rstrip() + "\n"


def write_credits(folder: str | os.PathLike, clips: Sequence[Clip], *, title: str = "") -> tuple[Path, Path]:
    """Write ``credits.txt`` and ``licences.json`` into ``folder`` (each to a temporary name, then renamed)."""
    folder = Path(folder)
    data = collect_credits(clips)
    paths = []
    for name, text in (("credits.txt", credits_text(data, title)),
                       ("licences.json", json.dumps(data, indent=2, ensure_ascii=False) + "\n")):
        path = folder / name
        tmp = folder / f".{name}.{os.getpid()}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        paths.append(path)
    return paths[0], paths[1]
