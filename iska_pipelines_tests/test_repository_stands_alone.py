"""The repository stands alone (SPEC §11): no test, README command, doc or script refers to a
path outside the clone, and the sample files the README and the tests use are inside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# a relative path climbing out of its folder: ../x, ../../x
CLIMB = re.compile(r"(?<![\w.])((?:\.\./)+)([\w.-]*)")
# Path(__file__).parents[N] / .parent chains in Python, counted from the file's folder
PARENTS = re.compile(r"Path\(__file__\)(?:\.resolve\(\))?((?:\.parents\[\d+\]|\.parent\b)+)")
STEP = re.compile(r"\.parents\[(\d+)\]|\.parent\b")
ABSOLUTE = re.compile(r"(?<![\w:/.])(/work/|/home/|/Users/)")
ALLOWED = "path-traversal probe"  # a line that names an outside path on purpose says so
TEXT_SUFFIXES = {".py", ".md", ".toml", ".yml", ".yaml", ".cfg", ".ini", ".sh", ".txt", ""}


def tracked_text_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    files = [ROOT / name for name in names]
    return [
        f
        for f in files
        if f.is_file()
        and (f.suffix in TEXT_SUFFIXES or f.name == "Makefile")
        and f.stat().st_size < 2_000_000
    ]


def outside_references(path: Path) -> list[str]:
    """Lines of `path` that name a place outside the repository."""
    found = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if ALLOWED in line:
            continue
        for match in CLIMB.finditer(line):
            # relative to the file (a link in a doc, a path in a module) or to the root (a
            # command in the README or the Makefile): fine only if it names something in the clone
            targets = [(base / match.group(1) / match.group(2)).resolve() for base in (path.parent, ROOT)]
            if not any(t.is_relative_to(ROOT) and t.exists() for t in targets):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
        for match in PARENTS.finditer(line):
            folder = path
            for step in STEP.finditer(match.group(1)):
                folder = folder.parents[int(step.group(1))] if step.group(1) else folder.parent
            if not folder.is_relative_to(ROOT):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
        if ABSOLUTE.search(line):
            found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return found


def test_no_tracked_file_refers_to_a_path_outside_the_repository():
    here = Path(__file__).resolve()
    found = [line for path in tracked_text_files() if path != here for line in outside_references(path)]
    assert not found, "paths outside the repository:\n" + "\n".join(found)


def test_the_check_catches_a_reference_to_a_folder_beside_the_clone(tmp_path):
    probe = ROOT / "docs" / f".probe-{tmp_path.name}.md"
    probe.write_text("cp ../elsewhere/forecasts_ghana.csv data/inbox/\n")
    try:
        assert outside_references(probe) == [
            f"docs/{probe.name}:1: cp ../elsewhere/forecasts_ghana.csv data/inbox/"
        ]
    finally:
        probe.unlink()


def readme_copies() -> list[tuple[list[str], str]]:
    """The README's `cp SOURCE... TARGET` commands."""
    readme = (ROOT / "README.md").read_text()
    return [
        (line.split()[1:-1], line.split()[-1])
        for line in (row.split("#")[0].strip() for row in readme.splitlines())
        if line.startswith("cp ")
    ]


def test_the_readme_quickstart_copies_the_grid_and_the_four_sample_files_from_the_clone():
    copied = [source for sources, _ in readme_copies() for source in sources]
    assert sorted(Path(source).name for source in copied) == sorted(
        [
            "forecasts_ghana.csv",
            "2021-02-05_additions.csv",
            "2021-02-06_additions.csv",
            "2021-02-06_deletions.csv",
            "2021-02-06_locupdates.csv",
        ]
    )
    for source in copied:
        assert (ROOT / source).is_file(), f"README: cp {source}: not in the repository"
