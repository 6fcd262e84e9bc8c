"""The manifest's ``openData`` part and its notes: what each source was asked, answered and
gave, whether it was missing from the last run, and the credits its licence asks for."""

from __future__ import annotations

from typing import Any

META_STATE = "opendata_runs"          # written by pipelines/opendata.py as each run closes
SOURCES = ("wikidata", "musicbrainz")
CREDITS = {
    "wikidata": ("Wikidata (https://www.wikidata.org), CC0 1.0: artist genres (P136 of the "
                 "item whose P1902 is the Spotify artist ID), mapped to Spotify-style names "
                 "by seeds/wikidata_genres.yaml; source 'wikidata' in _extra.genre_sources."),
    "musicbrainz": ("MusicBrainz (https://musicbrainz.org), core data CC0 1.0: original "
                    "release years by ISRC (earliest official, non-compilation, non-Various-"
                    "Artists release); _extra.year_source 'musicbrainz' where it set the year."),
}
LICENCE = {"wikidata": "CC0-1.0", "musicbrainz": "CC0-1.0 (core data)"}
TOP_UNMAPPED = 20


def open_data_facts(store: Any) -> dict[str, Any]:
    """Per source: the last run's state, every run's request counts, what the store holds."""
    runs = store.get_meta(META_STATE, {})
    held = {"wikidata": store.wikidata_counts(), "musicbrainz": store.musicbrainz_counts()}
    to_ask = {"wikidata": len(store.wikidata_to_ask()),
              "musicbrainz": len(store.musicbrainz_to_ask())}
    facts: dict[str, Any] = {}
    for name in SOURCES:
        entry = runs.get(name, {})
        last = entry.get("lastRun") or {}
        totals = entry.get("totals") or {}
        counts = held[name]
        part: dict[str, Any] = {
            "status": status(last, to_ask[name]),
            "requests": totals.get("requests", 0),
            "answered": totals.get("answered", 0),
            "retries": totals.get("retries", 0),
            "errors": totals.get("errors", 0),
            "asked": counts.get("found", 0) + counts.get("none", 0),
            "found": counts.get("found", 0),
            "missing": counts.get("none", 0),
            "toAsk": to_ask[name],
            "parked": last.get("parked"),
            "disabled": last.get("disabled"),
            "lastRunAt": last.get("at"),
            "licence": LICENCE[name],
        }
        if name == "wikidata":
            unmapped = entry.get("unmappedLabels") or {}
            top = sorted(unmapped.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_UNMAPPED]
            part["genres"] = store.db.execute(
                "SELECT COUNT(*) FROM genre_evidence WHERE source = 'wikidata'").fetchone()[0]
            part["unmappedLabels"] = sum(unmapped.values())
            part["topUnmappedLabels"] = dict(top)
        else:
            part["dated"] = counts.get("dated", 0)
        facts[name] = part
    return facts


def status(last: dict[str, Any], to_ask: int) -> str:
    """``complete`` (nothing left to ask), ``partial`` (asked, some left for the next run),
    ``missing`` (parked or unreachable in the last run, or never run) or ``off``."""
    if not last:
        return "missing" if to_ask else "complete"
    if not last.get("enabled"):
        return "off"
    if last.get("parked"):
        return "missing"
    return "partial" if to_ask else "complete"


def open_data_notes(facts: dict[str, Any]) -> list[str]:
    """Credits for every source the export used, and a line per source that was missing."""
    notes = []
    for name in SOURCES:
        part = facts.get(name) or {}
        if part.get("found"):
            notes.append(f"Open data: {CREDITS[name]}")
        label = "Wikidata" if name == "wikidata" else "MusicBrainz"
        state = part.get("status")
        if state == "off":
            notes.append(f"Open data: {label} was off ({part.get('disabled')}); its fields "
                         f"come from the other sources only.")
        elif state == "missing":
            why = part.get("parked") or "never asked"
            notes.append(f"Open data: {label} was missing from the last run ({why}); the "
                         f"export has what the store held, {part.get('toAsk', 0)} still to "
                         f"ask next run.")
        elif state == "partial":
            notes.append(f"Open data: {label} answered part of what was wanted; "
                         f"{part.get('toAsk', 0)} still to ask next run.")
    return notes
