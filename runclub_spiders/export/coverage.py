"""The coverage report of an export: tracks per umbrella x decade cell, as Markdown and a PNG.

The owner reads ``coverage.md`` to see which cells fell short and why, and glances at
``coverage.png`` (a heatmap) to see the same at once. Both are published with the export, so
they must be byte-identical for the same input: rows and columns keep the order given, the
lists below the table follow that order too, and the PNG carries no time or text chunks.

Each cell comes from the export as a dict (see ``CoverageTable.from_dicts``); ``status`` is
the exporter's verdict and is shown as given rather than recomputed here, so the report can
never disagree with the manifest.

Besides the grid, ``coverage.md`` lists every cell in detail: its artist variety (the tracks
of its most frequent primary artist, the artist cap at its size, tracks over that cap: see
``catalog.selection``) and what discovery concluded there (candidates found, estimated
reachable, why it stopped; blank where discovery wrote nothing). Its summary adds the
largest share one artist holds in any cell of at least ``SHARE_MIN_TRACKS`` tracks.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from PIL import Image, ImageDraw, ImageFont

Status = Literal["at_target", "at_min", "below_min"]
STATUSES: tuple[str, ...] = ("at_target", "at_min", "below_min")
CELL_KEYS = ("umbrella", "decade", "count", "home", "backfilled", "min", "target", "status")

MARKDOWN_NAME = "coverage.md"
PNG_NAME = "coverage.png"
BELOW_MIN_MARK = "⚠"
SHARE_MIN_TRACKS = 20         # smaller cells are not judged by their largest artist share


@dataclass(frozen=True, slots=True)
class CoverageCell:
    """One umbrella x decade cell: ``count`` = ``home`` + ``backfilled`` exported tracks."""

    umbrella: str
    decade: str
    count: int
    home: int
    backfilled: int
    min: int
    target: int
    status: Status
    why: str | None = None
    top_artist: int = 0                  # tracks of the cell's most frequent primary artist
    artist_cap: int = 0                  # tracks one artist may hold at this cell's count
    over_artist_share: int = 0           # tracks above that cap (only to reach the minimum)
    found: int | None = None             # discovery: candidates found (None: no record)
    reachable: float | None = None       # discovery: estimated reachable (None: unknown)
    stopped: str | None = None           # discovery: why it stopped (None: it had not)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CoverageCell:
        missing = [key for key in CELL_KEYS if key not in data]
        if missing:
            raise ValueError(f"coverage cell {dict(data)!r}: missing {', '.join(missing)}")
        found, reachable = data.get("found"), data.get("reachable")
        return cls(data["umbrella"], data["decade"], int(data["count"]), int(data["home"]),
                   int(data["backfilled"]), int(data["min"]), int(data["target"]),
                   data["status"], data.get("why"), int(data.get("top_artist") or 0),
                   int(data.get("artist_cap") or 0), int(data.get("over_artist_share") or 0),
                   None if found is None else int(found),
                   None if reachable is None else float(reachable), data.get("stopped"))

    @property
    def label(self) -> str:
        return f"{self.umbrella}, {self.decade}"

    @property
    def top_artist_share(self) -> float:
        return self.top_artist / self.count if self.count else 0.0


@dataclass(frozen=True, slots=True)
class CoverageTable:
    """Cells of an export, with the row (umbrella) and column (decade) order to show them in.

    An umbrella x decade pair without a cell is shown as empty ("-"): the plan did not ask
    for it. Construction checks the cells so a bad one fails here, not halfway through a
    drawing.
    """

    umbrellas: tuple[str, ...]
    decades: tuple[str, ...]
    cells: tuple[CoverageCell, ...]
    # (umbrella, decade) -> cell, built once here: not a field to give, compare or hash.
    _index: dict[tuple[str, str], CoverageCell] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_unique("umbrella", self.umbrellas)
        _check_unique("decade", self.decades)
        index: dict[tuple[str, str], CoverageCell] = {}
        for cell in self.cells:
            _check_cell(cell, self.umbrellas, self.decades)
            if (cell.umbrella, cell.decade) in index:
                raise ValueError(f"coverage cell {cell.label}: given twice")
            index[cell.umbrella, cell.decade] = cell
        object.__setattr__(self, "_index", index)       # frozen: set once, here

    @classmethod
    def from_dicts(cls, umbrellas: Iterable[str], decades: Iterable[str],
                   cells: Iterable[Mapping[str, Any]]) -> CoverageTable:
        """The table from the exporter's plain data (lists of names, cell dicts)."""
        return cls(tuple(umbrellas), tuple(decades),
                   tuple(CoverageCell.from_dict(cell) for cell in cells))

    def cell(self, umbrella: str, decade: str) -> CoverageCell | None:
        return self._index.get((umbrella, decade))

    def ordered_cells(self) -> list[CoverageCell]:
        """Cells in row order, then column order: the order of every list in the report."""
        return [self._index[key] for key in self._keys() if key in self._index]

    def _keys(self) -> list[tuple[str, str]]:
        return [(umbrella, decade) for umbrella in self.umbrellas for decade in self.decades]

    def largest_artist_share(self, min_tracks: int = SHARE_MIN_TRACKS) -> CoverageCell | None:
        """The cell of at least ``min_tracks`` tracks where one artist holds the largest
        share (the first in row order on a tie), None if no cell is that large."""
        best: CoverageCell | None = None
        for cell in self.ordered_cells():
            # Compared as fractions cross-multiplied: no float ties.
            if cell.count >= min_tracks and (
                    best is None or cell.top_artist * best.count > best.top_artist * cell.count):
                best = cell
        return best


def _check_unique(kind: str, names: Sequence[str]) -> None:
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"coverage table: {kind} listed twice: {', '.join(duplicates)}")


def _check_cell(cell: CoverageCell, umbrellas: Sequence[str], decades: Sequence[str]) -> None:
    if cell.umbrella not in umbrellas:
        raise ValueError(f"coverage cell {cell.label}: unknown umbrella {cell.umbrella!r}")
    if cell.decade not in decades:
        raise ValueError(f"coverage cell {cell.label}: unknown decade {cell.decade!r}")
    if cell.status not in STATUSES:
        raise ValueError(f"coverage cell {cell.label}: status {cell.status!r} is not one of "
                         f"{', '.join(STATUSES)}")
    if cell.count != cell.home + cell.backfilled:
        raise ValueError(f"coverage cell {cell.label}: count {cell.count} is not home "
                         f"{cell.home} + backfilled {cell.backfilled}")
    if not cell.over_artist_share <= cell.top_artist <= cell.count:
        raise ValueError(f"coverage cell {cell.label}: {cell.over_artist_share} over the artist "
                         f"cap, top artist {cell.top_artist}, of {cell.count} tracks")


# ---------------------------------------------------------------------------------- Markdown
_MD_SPECIAL = "\\`*_[]<>|"


def _md(text: str) -> str:
    """Text safe inside a table cell or list item: one line, Markdown syntax escaped.

    ``&`` stays as is ("R&B & Soul"): it only starts an entity when followed by a name and
    ``;``, which umbrella names never have.
    """
    flat = " ".join(text.split())
    return "".join(f"\\{char}" if char in _MD_SPECIAL else char for char in flat)


def _md_cell(cell: CoverageCell | None) -> str:
    if cell is None:
        return "-"
    count = f"**{cell.count}**" if cell.status == "below_min" else str(cell.count)
    text = f"{count}/{cell.target}"
    if cell.status == "below_min":
        text += f" {BELOW_MIN_MARK}"
    if cell.backfilled:
        text += f" (+{cell.backfilled})"
    return text


def _md_total(cells: Iterable[CoverageCell]) -> str:
    cells = list(cells)
    count = sum(cell.count for cell in cells)
    target = sum(cell.target for cell in cells)
    backfilled = sum(cell.backfilled for cell in cells)
    text = f"**{count}**/{target}"
    return text + (f" (+{backfilled})" if backfilled else "")


def _md_row(values: Iterable[str]) -> str:
    return "| " + " | ".join(values) + " |"


def _md_table(table: CoverageTable) -> list[str]:
    cells = table.ordered_cells()
    lines = [
        _md_row(["Umbrella", *(_md(decade) for decade in table.decades), "Total"]),
        _md_row([":---", *("---:" for _ in table.decades), "---:"]),
    ]
    for umbrella in table.umbrellas:
        row = [_md_cell(table.cell(umbrella, decade)) for decade in table.decades]
        total = _md_total(cell for cell in cells if cell.umbrella == umbrella)
        lines.append(_md_row([_md(umbrella), *row, total]))
    totals = [_md_total(cell for cell in cells if cell.decade == decade)
              for decade in table.decades]
    lines.append(_md_row(["**Total**", *totals, _md_total(cells)]))
    return lines


def _md_legend() -> list[str]:
    return [
        "Legend:",
        "",
        "- `count/target`: tracks exported for the cell, against the cell's target.",
        f"- `**count**/target {BELOW_MIN_MARK}`: the cell is below its minimum.",
        "- `(+n)`: n of the tracks were backfilled (exported for this cell from outside its"
        " own discovery), the rest are home tracks.",
        "- `-`: no such cell in the plan.",
        "- Totals are in bold; their target is the sum of the cells' targets.",
    ]


def _md_below_min(cells: Sequence[CoverageCell]) -> list[str]:
    below = [cell for cell in cells if cell.status == "below_min"]
    if not below:
        return ["None: every cell reached its minimum."]
    return [f"- **{_md(cell.label)}**: {cell.count} of min {cell.min} (target {cell.target})"
            f": {_md(cell.why) if cell.why else 'no reason recorded'}" for cell in below]


def _md_backfill(cells: Sequence[CoverageCell]) -> list[str]:
    filled = [cell for cell in cells if cell.backfilled]
    if not filled:
        return ["None: every cell holds home tracks only."]
    lines = [f"- **{_md(cell.label)}**: +{cell.backfilled} backfilled, {cell.home} home,"
             f" {cell.count} in all" for cell in filled]
    total = sum(cell.backfilled for cell in filled)
    return [*lines, "", f"{total} backfilled tracks in {len(filled)} cells."]


def largest_share_line(table: CoverageTable, min_tracks: int = SHARE_MIN_TRACKS) -> str:
    """The summary line on artist variety."""
    best = table.largest_artist_share(min_tracks)
    over = [cell for cell in table.ordered_cells() if cell.over_artist_share]
    line = (f"largest share of one artist in a cell of at least {min_tracks} tracks: "
            + (f"{best.top_artist_share:.1%} ({_md(best.label)}: {best.top_artist} of "
               f"{best.count})" if best else "none (no cell that large)"))
    if over:
        line += (f"; {sum(cell.over_artist_share for cell in over)} tracks over the artist "
                 f"cap in {len(over)} cells that would otherwise stay below their minimum")
    return line


def _md_optional(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def _md_details(table: CoverageTable) -> list[str]:
    lines = [
        _md_row(["Cell", "Tracks", "Target", "Top artist", "Cap", "Over cap", "Found",
                 "Reachable", "Discovery stopped"]),
        _md_row([":---", *("---:" for _ in range(7)), ":---"]),
    ]
    for cell in table.ordered_cells():
        recorded = cell.found is not None
        stopped = _md(cell.stopped) if cell.stopped else "not stopped" if recorded else ""
        lines.append(_md_row([
            _md(cell.label), str(cell.count), str(cell.target),
            f"{cell.top_artist} ({cell.top_artist_share:.0%})", str(cell.artist_cap),
            str(cell.over_artist_share) if cell.over_artist_share else "",
            _md_optional(cell.found), _md_optional(cell.reachable), stopped]))
    return [*lines, "",
            "- Top artist: the tracks of the cell's most frequent primary artist (share of the"
            " cell); Cap: what one artist may hold at the cell's size; Over cap: tracks above"
            " it, admitted only where the cell would otherwise stay below its minimum.",
            "- Found, Reachable, Discovery stopped: what discovery last concluded for the cell"
            " (candidates found, estimated reachable, why it stopped spending there); blank"
            " where it recorded nothing."]


def render_markdown(table: CoverageTable, *, title: str, summary_lines: list[str]) -> str:
    """``coverage.md``: title, summary, the umbrella x decade table, legend, then the cells
    below their minimum (with why), the cells that received backfill, and every cell in
    detail (artist variety, discovery).

    Names, decades, ``why`` and the title are escaped; ``summary_lines`` are written as given
    (one bullet each), so they may carry Markdown of their own; the line on artist variety
    (``largest_share_line``) follows them.
    """
    cells = table.ordered_cells()
    lines = [f"# {_md(title)}", ""]
    lines += [f"- {line}" for line in [*summary_lines, largest_share_line(table)]] + [""]
    lines += ["## Tracks per umbrella and decade", "", *_md_table(table), ""]
    lines += [*_md_legend(), ""]
    lines += ["## Cells below their minimum", "", *_md_below_min(cells), ""]
    lines += ["## Backfill", "", *_md_backfill(cells), ""]
    lines += ["## Cells in detail", "", *_md_details(table)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------- PNG
WIDTH, HEIGHT = 900, 700
MARGIN = 20
TITLE_BAND = 44               # title line
HEADER_BAND = 26              # decade labels above the grid
LEGEND_BAND = 56              # swatches and the shading note below the grid
MIN_ROW_HEIGHT = 14           # below this the count no longer fits; the image grows instead
MAX_ROW_HEIGHT = 40
LABEL_WIDTH_MAX = 240

Colour = tuple[int, int, int]
BACKGROUND: Colour = (255, 255, 255)
INK: Colour = (33, 33, 33)
GRID: Colour = (255, 255, 255)
EMPTY: Colour = (224, 224, 224)
# Red (darkest when empty) up to the minimum, amber up to the target, green at target.
RED_FROM, RED_TO = (165, 0, 38), (244, 109, 67)
AMBER_FROM, AMBER_TO = (253, 174, 97), (254, 224, 139)
GREEN: Colour = (26, 152, 80)


def _lerp(start: Colour, end: Colour, t: float) -> Colour:
    t = min(max(t, 0.0), 1.0)
    r, g, b = (round(a + (z - a) * t) for a, z in zip(start, end, strict=True))
    return (r, g, b)


def cell_colour(cell: CoverageCell | None) -> Colour:
    """Band by status, shade by how far the count got within the band."""
    if cell is None:
        return EMPTY
    if cell.status == "below_min":
        return _lerp(RED_FROM, RED_TO, cell.count / cell.min if cell.min else 1.0)
    if cell.status == "at_min":
        span = cell.target - cell.min
        return _lerp(AMBER_FROM, AMBER_TO, (cell.count - cell.min) / span if span > 0 else 1.0)
    return GREEN


def _text_colour(fill: Colour) -> Colour:
    # Perceived luminance: white text on the dark reds and the green, dark text elsewhere.
    r, g, b = fill
    return (255, 255, 255) if 0.299 * r + 0.587 * g + 0.114 * b < 150 else INK


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's bundled font: no system font lookup, so every machine draws the same glyphs.
    return ImageFont.load_default(size=size)


def _text_width(draw: ImageDraw.ImageDraw, text: str, font: Any) -> float:
    left, _, right, _ = draw.textbbox((0, 0), text, font=font)
    return right - left


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Any, width: float) -> str:
    """``text`` cut with "..." so it fits ``width``: long umbrella names must not hit the grid."""
    if _text_width(draw, text, font) <= width:
        return text
    while text and _text_width(draw, text + "...", font) > width:
        text = text[:-1]
    return text.rstrip() + "..."


@dataclass(frozen=True, slots=True)
class _Layout:
    height: int
    label_width: int
    grid_left: int
    grid_top: int
    column_width: float
    row_height: float


def _layout(table: CoverageTable, draw: ImageDraw.ImageDraw, font: Any) -> _Layout:
    rows = max(len(table.umbrellas), 1)
    labels = [_text_width(draw, name, font) for name in table.umbrellas] or [0.0]
    label_width = min(int(max(labels)) + 12, LABEL_WIDTH_MAX)
    grid_top = MARGIN + TITLE_BAND + HEADER_BAND
    space = HEIGHT - grid_top - LEGEND_BAND - MARGIN
    row_height = min(max(space / rows, MIN_ROW_HEIGHT), MAX_ROW_HEIGHT)
    height = max(HEIGHT, round(grid_top + rows * row_height + LEGEND_BAND + MARGIN))
    grid_left = MARGIN + label_width
    column_width = (WIDTH - MARGIN - grid_left) / max(len(table.decades), 1)
    return _Layout(height, label_width, grid_left, grid_top, column_width, row_height)


def _centre(draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float], text: str,
            font: Any, fill: Colour) -> None:
    x = (box[0] + box[2]) / 2
    y = (box[1] + box[3]) / 2
    draw.text((x, y), text, font=font, fill=fill, anchor="mm")


def _draw_grid(draw: ImageDraw.ImageDraw, table: CoverageTable, layout: _Layout,
               font: Any) -> None:
    for col, decade in enumerate(table.decades):
        left = layout.grid_left + col * layout.column_width
        box = (left, layout.grid_top - HEADER_BAND, left + layout.column_width, layout.grid_top)
        _centre(draw, box, decade, font, INK)
    for row, umbrella in enumerate(table.umbrellas):
        top = layout.grid_top + row * layout.row_height
        label = _fit(draw, umbrella, font, layout.label_width - 12)
        draw.text((layout.grid_left - 8, top + layout.row_height / 2), label, font=font,
                  fill=INK, anchor="rm")
        for col, decade in enumerate(table.decades):
            cell = table.cell(umbrella, decade)
            left = layout.grid_left + col * layout.column_width
            box = (left, top, left + layout.column_width, top + layout.row_height)
            fill = cell_colour(cell)
            draw.rectangle(box, fill=fill, outline=GRID)
            text = "-" if cell is None else f"{cell.count}/{cell.target}"
            _centre(draw, box, text, font, _text_colour(fill))


def _draw_legend(draw: ImageDraw.ImageDraw, layout: _Layout, font: Any) -> None:
    entries = [(RED_FROM, "below min"), (AMBER_FROM, "min to target"), (GREEN, "at target"),
               (EMPTY, "no cell")]
    top = layout.height - MARGIN - LEGEND_BAND + 14
    x = float(layout.grid_left)
    for colour, text in entries:
        draw.rectangle((x, top, x + 16, top + 16), fill=colour, outline=INK)
        draw.text((x + 22, top + 8), text, font=font, fill=INK, anchor="lm")
        x += 22 + _text_width(draw, text, font) + 24
    note = "cell text: count/target; shade: how far the count got toward the next band"
    draw.text((layout.grid_left, top + 30), note, font=font, fill=INK, anchor="lm")


def render_png(table: CoverageTable, *, title: str) -> bytes:
    """``coverage.png``: the umbrella x decade heatmap, 900 px wide (taller past ~40 rows)."""
    font = _font(13)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    layout = _layout(table, probe, font)
    image = Image.new("RGB", (WIDTH, layout.height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    title_font = _font(20)
    draw.text((MARGIN, MARGIN), _fit(draw, title, title_font, WIDTH - 2 * MARGIN),
              font=title_font, fill=INK)
    _draw_grid(draw, table, layout, font)
    _draw_legend(draw, layout, font)
    buffer = io.BytesIO()
    # No pnginfo and no exif: Pillow then writes no tIME/tEXt chunks, so the bytes depend on
    # the pixels only (and on the zlib and FreeType builds, which are pinned with Pillow).
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


# -------------------------------------------------------------------------------------- files
def write_coverage(directory: Path, table: CoverageTable, *, title: str,
                   summary_lines: list[str]) -> list[str]:
    """Write ``coverage.md`` and ``coverage.png`` into ``directory``; return their names.

    Plain writes: ``directory`` is a staging folder that is published atomically as a whole.
    """
    markdown = render_markdown(table, title=title, summary_lines=summary_lines)
    (directory / MARKDOWN_NAME).write_bytes(markdown.encode("utf-8"))
    (directory / PNG_NAME).write_bytes(render_png(table, title=title))
    return [MARKDOWN_NAME, PNG_NAME]
