"""Every text the console shows has a zh-CN translation (console/i18n.py's one table), found by a static
sweep: `_("…")` literals in console/templates/**/*.html and `i18n.t("…")` / `t("…")` literals in
console/*.py, after `import console` (which imports every page module, so each has added its texts).
And the fixed English names of controls (CONSOLE.md; tests find controls by them) stay as they are in `en`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "console"
TEMPLATE_TEXT = re.compile(r"""\b_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")

# CONSOLE.md's fixed English names of controls (buttons, fields, links, sections).
CONTROL_NAMES = [
    "Email", "Password", "Sign in", "Sign out", "Search the catalog", "Search", "Category", "Region",
    "Delivery mode", "Price model", "Sign here on site", "New product", "Title", "Summary", "Description",
    "Keywords", "Price", "Currency", "Save draft", "Submit for certification", "New release", "Files", "Upload",
    "Publish", "Accept", "Counter", "Reject", "New procurement", "Budget", "Deadline", "Publish procurement",
    "Make an offer", "Amount", "Scope", "Duration (days)", "Calls", "Periods", "Renew automatically", "Send offer",
    "Sign contract", "Pay by bank transfer", "Accept delivery", "Open a dispute", "Organizations to verify",
    "Verify", "Reason", "Certifications to review", "Payments to confirm", "Confirm payment", "Disputes",
    "Refund amount", "Resolve", "Payouts", "Stage", "Decision", "Comment", "Submit review", "Assessor", "Assign",
    "Verify ledger", "Verified in your browser", "Verification failed", "Signature valid", "Digest matches",
]


def template_texts() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((CONSOLE / "templates").rglob("*.html")):
        for m in TEMPLATE_TEXT.finditer(path.read_text(encoding="utf-8")):
            raw = m.group(1) if m.group(1) is not None else m.group(2)
            text = raw.encode("utf-8").decode("unicode_escape") if "\\" in raw else raw
            found.setdefault(text, set()).add(path.relative_to(ROOT).as_posix())
    return found


def python_texts() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted(CONSOLE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            f = node.func
            on_i18n = isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "i18n"
            named_t = (isinstance(f, ast.Name) and f.id in ("t", "_")) or (on_i18n and f.attr == "t")
            first = node.args[0]
            if named_t and isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.setdefault(first.value, set()).add(f"{path.relative_to(ROOT).as_posix()}:{node.lineno}")
    return found


@pytest.fixture(scope="module")
def zh() -> dict[str, str]:
    import console  # noqa: F401 - imports every page module, each adding its texts
    from console.i18n import ZH

    return ZH


def test_the_sweep_finds_the_texts():
    assert "Sign in" in template_texts() and python_texts(), "the sweep's patterns no longer match the console"


def test_every_text_of_a_template_has_a_chinese_translation(zh):
    missing = {text: sorted(where) for text, where in template_texts().items() if text not in zh}
    assert not missing, "texts without a zh-CN entry (add them with i18n.add):\n" + "\n".join(
        f"  {text!r}  ({', '.join(where)})" for text, where in sorted(missing.items()))


def test_every_text_of_the_python_pages_has_a_chinese_translation(zh):
    missing = {text: sorted(where) for text, where in python_texts().items() if text not in zh}
    assert not missing, "texts without a zh-CN entry (add them with i18n.add):\n" + "\n".join(
        f"  {text!r}  ({', '.join(where)})" for text, where in sorted(missing.items()))


def test_no_chinese_entry_is_empty_or_still_english(zh):
    empty = [en for en, text in zh.items() if not text.strip()]
    assert not empty, f"empty zh-CN entries: {empty}"


def test_placeholders_are_the_same_in_both_languages(zh):
    names = re.compile(r"\{(\w*)\}")
    wrong = {en: text for en, text in zh.items() if sorted(names.findall(en)) != sorted(names.findall(text))}
    assert not wrong, f"zh-CN entries whose {{placeholders}} differ from the English: {wrong}"


def test_the_fixed_control_names_are_never_translated_in_english(zh):
    from flask import Flask

    from console import i18n

    app = Flask(__name__)
    with app.test_request_context("/?lang=en"):
        changed = {name: i18n.t(name) for name in CONTROL_NAMES if i18n.t(name) != name}
    assert not changed, f"English control names changed in en: {changed}"
    with app.test_request_context("/?lang=zh-CN"):
        assert i18n.t("Sign in") != "Sign in", "zh-CN pages show the translation"
