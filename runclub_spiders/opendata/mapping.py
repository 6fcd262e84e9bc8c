"""Wikidata genre labels to Spotify-style genre names (``seeds/wikidata_genres.yaml``).

Wikidata names genres as encyclopaedia topics ("hip hop music", "rhythm and blues"); the app's
umbrella mapping knows Spotify's vocabulary ("hip hop", "r&b"). Labels are matched ignoring
case and spacing; the genres are written normalised as the brief says (lowercase, hyphen to
space, "&" to "and"). A label the file maps to ``[]`` is known and deliberately dropped (not a
genre the app uses: "singer-songwriter"); a label the file does not list is *unmapped*: never
exported raw, counted (stat ``wikidata/unmapped_labels``, manifest ``openData``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from runclub_spiders.umbrellas import SeedFile, describe, normalize_genre


def label_key(label: str) -> str:
    """How labels are compared: case-folded, single spaces."""
    return " ".join(label.casefold().split())


@dataclass(frozen=True)
class GenreMapping:
    labels: dict[str, tuple[str, ...]] = field(default_factory=dict)   # label key -> genres

    def genres(self, label: str) -> tuple[str, ...] | None:
        """The genres a label stands for (maybe none), None when the file does not list it."""
        return self.labels.get(label_key(label))

    def __contains__(self, label: str) -> bool:
        return label_key(label) in self.labels


def load_mapping(path: str | Path) -> GenreMapping:
    """Read and check the mapping file; a mistake is one ``SeedError`` line naming the file
    and the key."""
    seed = SeedFile(path)
    data = seed.mapping(seed.read(), "", required=("labels",))
    labels = data["labels"]
    if not isinstance(labels, dict) or not labels:
        raise seed.error("labels", f"must be a non-empty mapping of Wikidata label to genre "
                                   f"(or a list of genres), not {describe(labels)}")
    result: dict[str, tuple[str, ...]] = {}
    for label, value in labels.items():
        where = f"labels[{label!r}]"
        if not isinstance(label, str) or not label.strip():
            raise seed.error(where, "a label must be a non-empty string")
        key = label_key(label)
        if key in result:
            raise seed.error(where, f"{label!r} is listed twice (labels compare ignoring case)")
        values = value if isinstance(value, list) else [value]
        genres = []
        for item in values:
            genre = normalize_genre(seed.string(item, where)) if item is not None else ""
            if not genre and item is not None:
                raise seed.error(where, "a genre must contain letters")
            if genre:
                genres.append(genre)
        result[key] = tuple(dict.fromkeys(genres))
    return GenreMapping(result)
