"""The README is the front door and docs/ holds the rest: the README stays short, every relative link
in either lands on a file and, where it names one, a heading that exists, and every `uv run kiosk`
command they show is one the CLI accepts as written.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.tools import REPO_ROOT

README = REPO_ROOT / "README.md"
PAGES = [README, *sorted((REPO_ROOT / "docs").glob("*.md"))]
#: Pages written on another branch at the same time as the pages that link to them: a link to one
#: may point nowhere until it lands, and is checked like any other once the file exists.
PENDING = {"docs/exactly-once.md"}
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_CODE = re.compile(r"`[^`]*`")
_KIOSK = re.compile(r"`(uv run kiosk [^`]*)`|^ {4}(uv run kiosk .*)$", re.MULTILINE)
#: What marks a synopsis rather than a command: `kiosk lint [-e ENV ...]`.
_SYNOPSIS = re.compile(r"[\[<]|\.\.\.")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_slug(line.lstrip("#")) for line in page.read_text().splitlines() if line.startswith("#")}


def _links(page: Path) -> list[str]:
    text = _CODE.sub("", page.read_text())
    return [target for target in _LINK.findall(text) if "://" not in target and not target.startswith("mailto:")]


def test_readme_stays_short_with_a_table_of_contents() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) < 200, f"README.md has {len(lines)} lines; move details to docs/"
    toc = [target for target in _links(README) if target.startswith("#")]
    headings = {_slug(line.lstrip("#")) for line in lines if line.startswith("## ")}
    assert headings and headings <= {target[1:] for target in toc}, sorted(headings)


def test_docs_links_land_on_files_and_headings() -> None:
    broken = []
    for page in PAGES:
        for target in _links(page):
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            name = file.relative_to(REPO_ROOT).as_posix() if file.is_relative_to(REPO_ROOT) else str(file)
            if name in PENDING and not file.exists():
                continue
            if not file.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert broken == []


def _kiosk_commands() -> list[tuple[str, list[str]]]:
    found = []
    for page in [*PAGES, *sorted(REPO_ROOT.glob("*/README.md")), *sorted(REPO_ROOT.glob("steps/*/README.md"))]:
        for match in _KIOSK.finditer(page.read_text()):
            line = match.group(1) or match.group(2)
            words = shlex.split(line, comments=True)
            words = words[: words.index(">")] if ">" in words else words
            if not _SYNOPSIS.search(line):
                found.append((f"{page.relative_to(REPO_ROOT)}: {line.strip()}", words[3:]))
    return found


def test_docs_kiosk_commands_parse_as_written() -> None:
    commands = _kiosk_commands()
    assert len(commands) > 10 and any(args == ["demo"] for _, args in commands)
    failed = []
    for where, args in commands:
        # `--help` last: the sub-commands and every option before it are parsed as written (an unknown
        # one fails), and nothing runs.
        result = CliRunner().invoke(app, [*args, "--help"])
        if result.exit_code != 0:
            failed.append(f"{where}: {result.output.strip().splitlines()[-2:]}")
    assert failed == []
