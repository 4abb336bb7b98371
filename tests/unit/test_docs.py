"""The project's documentation stands on its own: no link leaves the repository's files unresolved,
nothing points at the contract files outside the repository, and the README stays a front page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "deploy" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    missing = [target for target in LINK.findall(page.read_text(encoding="utf-8"))
               if "://" not in target and not (page.parent / target).exists()]
    assert not missing, f"{page.name} links to files that do not exist: {missing}"


@pytest.mark.parametrize("page", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_page_relies_on_files_outside_the_repository(page):
    assert "../shared" not in page.read_text(encoding="utf-8")


def test_the_readme_is_a_front_page():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    # A front page: the two commands, the tour (one step per stage of a deal, from registration to the
    # regulator's report, each checked by tests/integration/test_readme_tour.py), the console's two
    # screenshots, the guarantees.
    assert len(text.splitlines()) <= 215
    first_block = text.split("```")[1]
    assert "make run" in first_block and "make test" in first_block


def test_every_domain_has_its_page():
    for page in ("identity", "listings", "certification", "trading", "ledger-and-payments", "delivery", "api-guide",
                 "operations", "performance", "decisions"):
        assert (ROOT / "docs" / f"{page}.md").exists(), page


def test_the_readmes_screenshots_are_small_pngs_in_docs():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]+\]\((docs/[^)]+\.png)\)", text)
    assert len(images) == 2, images
    for image in images:
        data = (ROOT / image).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < 200_000, image
