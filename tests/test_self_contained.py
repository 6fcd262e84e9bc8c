"""The repository carries everything its code, tests and docs need (issue 12, item 1).

A clone with nothing beside it must run and pass the suite, so no tracked file may read or
cite a path outside the repository: not the reference folder the project was developed next to
(by relative path, absolute path or ``Path(__file__)`` arithmetic), and no ``Path(__file__)``
ancestor above the repository root. The patterns are assembled from pieces so that this file
does not match them itself; it is checked like every other file.
"""

from __future__ import annotations

import os
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".git", ".venv", ".ci-venv", "__pycache__", ".pytest_cache", ".ruff_cache",
             "node_modules"}

_SIBLING = "sha" + "red"   # the reference folder beside the checkout during development
_ROOT = "/" + "work"       # the development machine's workspace root
_FILE = "Path(" + "__file__)"  # samples below must not match FILE_ANCESTOR in this very file
OUTSIDE_PATTERNS = {
    "relative path to the sibling folder": re.compile(r"\.\./" + _SIBLING + r"\b"),
    "absolute workspace path": re.compile(r"(?<![\w.:/~-])" + _ROOT + r"/"),
    "sibling folder's docs or reference": re.compile(_SIBLING + r"/(?:docs|reference)\b"),
    "Path arithmetic to the sibling folder": re.compile(
        r"parents?(?:\[\d+\])?\s*/\s*[\"']" + _SIBLING + r"[\"']"),
}

# Path(__file__)[.resolve()].parents[k]  and  Path(__file__)[.resolve()].parent.parent...
FILE_ANCESTOR = re.compile(
    r"Path\(\s*__file__\s*\)(?:\.resolve\(\))?(?:\.parents\[(\d+)\]|((?:\.parent\b)+))")


@cache
def tracked_files() -> tuple[Path, ...]:
    """Files git tracks; without git (or outside a git checkout), the tree minus caches."""
    try:
        listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], check=True,
                                capture_output=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        listed = b""
    if listed:
        paths = [REPO / name for name in listed.decode("utf-8", "surrogateescape").split("\0")
                 if name]
    else:
        paths = []
        for root, dirs, files in os.walk(REPO):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
            paths.extend(Path(root) / name for name in files)
    return tuple(sorted(p for p in paths if p.is_file()))


@cache
def text_of(path: Path) -> str | None:
    """The file as text, or None for a binary file."""
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", "replace")


def text_files() -> list[tuple[Path, str]]:
    return [(path, text) for path in tracked_files() if (text := text_of(path)) is not None]


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def test_the_file_list_covers_the_project():
    names = {p.relative_to(REPO).as_posix() for p in tracked_files()}
    assert {"README.md", "pyproject.toml", "tests/test_self_contained.py",
            "tests/data/spotify-openapi.yml", "tests/data/spotify-openapi.LICENSE"} <= names
    assert not any(part in SKIP_DIRS for n in names for part in Path(n).parts[:-1])


@pytest.mark.parametrize("what", sorted(OUTSIDE_PATTERNS))
def test_no_tracked_file_cites_a_path_outside_the_repository(what):
    pattern = OUTSIDE_PATTERNS[what]
    hits = [f"{path.relative_to(REPO)}:{line_of(text, m.start())}: {m.group(0)!r}"
            for path, text in text_files() for m in pattern.finditer(text)]
    assert not hits, f"{what}:\n" + "\n".join(hits)


def test_file_relative_paths_stay_inside_the_repository():
    escapes, checked = [], 0
    for path, text in text_files():
        if path.suffix != ".py":
            continue
        for match in FILE_ANCESTOR.finditer(text):
            index = int(match.group(1)) if match.group(1) is not None else (
                match.group(2).count(".parent") - 1)
            checked += 1
            ancestors = path.resolve().parents
            target = ancestors[index] if index < len(ancestors) else Path(path.anchor)
            if target != REPO and REPO not in target.parents:
                escapes.append(f"{path.relative_to(REPO)}:{line_of(text, match.start())}: "
                               f"{match.group(0)} is {target}, outside {REPO}")
    assert not escapes, "\n".join(escapes)
    assert checked, "no Path(__file__) ancestors found: is the pattern still right?"


@pytest.mark.parametrize("sample", [
    "see ../" + _SIBLING + "/docs/notes.md",
    _ROOT + "/" + _SIBLING + "/reference/spec.yml",
    _FILE + '.resolve().parents[2] / "' + _SIBLING + '" / "x.yml"',
    "(" + _SIBLING + "/docs/notes.md, section 3)",
])
def test_the_patterns_catch_what_they_are_for(sample):
    assert any(p.search(sample) for p in OUTSIDE_PATTERNS.values())


def test_the_ancestor_check_sees_an_escape():
    deep = REPO / "tests" / "x.py"
    assert deep.parents[1] == REPO
    assert REPO not in deep.parents[2].parents and deep.parents[2] != REPO
    match = FILE_ANCESTOR.search(_FILE + ".resolve().parent.parent.parent")
    assert match is not None and match.group(2).count(".parent") - 1 == 2
