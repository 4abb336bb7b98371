"""User-supplied text into documents: the one escaping helper per output format.

Every renderer that puts user text (titles, scenarios, organization names, ...) into Markdown or HTML
goes through these, today the contract document (trading/document.py):

- `strip_bidi(s)` makes bidi controls visible: U+202A..U+202E, U+2066..U+2069, U+200E, U+200F and
  U+061C become a marker such as `<U+202E>`, so `invoice<RLO>gpj.exe` cannot display as
  `invoiceexe.jpg` and a party's name cannot reorder the text around it.
- `escape_html(s)`: `& < > " '` as entities (safe in text and in quoted attributes), bidi shown.
- `escape_markdown(s, multiline=False)`: text for CommonMark / GitHub-flavoured Markdown that renders
  as exactly the characters given and never as markup: bidi shown; `& < >` as entities (no raw HTML,
  no `<autolink>`); every other Markdown metacharacter (`\\ ` * _ { } [ ] ( ) # ! | ~`) backslash-escaped
  (no link, image, emphasis, code, table cell or strike-through); `://` and `www.` broken with a
  backslash (no GFM autolink literal); a line's leading `-`, `+`, `=` or `1.` escaped and its
  indentation dropped (no list, setext heading or code block; `#` and `>` are always escaped). Line
  breaks (also U+2028/U+2029) become spaces unless `multiline`: a single-line field or a table cell
  cannot open a new block.
- `markdown_code(s)`: a code span for identifiers (backtick fence longer than any run inside).

The escaped text still reads the same once rendered (Chinese text, digits and spaces are untouched).
"""

from __future__ import annotations

import re

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_BIDI = re.compile("[" + "".join(sorted(BIDI_CONTROLS)) + "]")
_LINE_BREAK = re.compile("\r\n|[\r\n\v\f\x85\u2028\u2029]")
_MARKDOWN_PUNCT = re.compile(r"([\\`*_{}\[\]()#!|~])")
_AUTOLINK = re.compile(r"(?i):(?=//)|(?<=www)\.")
_BLOCK_START = re.compile(r"^(?:([-+=])|(\d{1,9})([.)]))")


def strip_bidi(text: str) -> str:
    """Replace each bidi control character with a visible `<U+XXXX>` marker."""
    return _BIDI.sub(lambda m: f"<U+{ord(m.group()):04X}>", text)


def escape_html(text: str) -> str:
    """Text for HTML content or a quoted attribute value, bidi controls shown."""
    return (strip_bidi(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#x27;"))


def _escape_line(line: str, *, first: bool, multiline: bool) -> str:
    if multiline:
        line = line.lstrip(" \t")  # four spaces would open a code block
    line = line.replace("\t", " ")
    line = _MARKDOWN_PUNCT.sub(r"\\\1", line)
    line = _AUTOLINK.sub(lambda m: "\\" + m.group(), line)
    line = line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if first or multiline:
        line = _BLOCK_START.sub(lambda m: "\\" + m.group(1) if m.group(1) else f"{m.group(2)}\\{m.group(3)}", line)
    return line


def escape_markdown(text: str, *, multiline: bool = False) -> str:
    """`text` as literal Markdown text (see the module docstring); one line unless `multiline`."""
    text = strip_bidi(str(text))
    lines = _LINE_BREAK.split(text)
    if not multiline:
        lines = [" ".join(lines)]
    return "\n".join(_escape_line(line, first=i == 0, multiline=multiline) for i, line in enumerate(lines))


def markdown_code(text: str) -> str:
    """`text` as one Markdown code span (identifiers, digests): single line, bidi shown."""
    text = " ".join(_LINE_BREAK.split(strip_bidi(str(text))))
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
