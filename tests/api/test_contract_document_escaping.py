"""GET /api/v1/contracts/{id}/document: user-supplied text (product title, scenarios, organization
names) lands in the Markdown escaped for Markdown, with bidi controls made visible, so a seller cannot
add a fake "Certificate verified" link, an image, a script, a heading or a reordered file name to the
contract both parties sign; the escaped text still reads the same.

Each payload of the table goes into every user-supplied field of one contract; the raw document and
its CommonMark rendering (markdown-it-py, as a client would show it) are checked.
"""

from __future__ import annotations

import hashlib
import html as htmllib
import re
from collections import Counter

import pytest
import rfc8785
from markdown_it import MarkdownIt

from tests.tradeflow import contract_for, sign

PAYLOADS = {
    "img_and_fake_link": "<img src=x onerror=alert(1)> [✅ Certificate verified](https://evil.example/pay)",
    "script": "<script>alert(document.cookie)</script>",
    "markdown_link": '[点击付款 pay here](https://evil.example/pay "Exchange")',
    "markdown_image": "![seal](https://evil.example/seal.png)",
    "reference_link": "[verified][1] [1]: https://evil.example/",
    "autolink": "<https://evil.example/pay> <mailto:a@evil.example>",
    "bare_url": "see https://evil.example/pay or www.evil.example",
    "heading": "# 已由交易所认证 Verified by the exchange",
    "blockquote": "> 交易所提示 Notice: pay to account 6222 0000",
    "list_markers": "- 1. + * item",
    "table_pipes": "| 金额 Amount | 0 |",
    "emphasis_code": "**bold** __b__ _em_ `code` ~~struck~~ ***",
    "html_entities": "&lt;img src=x onerror=alert(1)&gt; &#60;script&#62; &amp;",
    "html_comment_anchor": '<!-- hidden --> <a href="javascript:alert(1)">x</a> <details open>',
    "backslashes": "C:\\new\\ [x]\\(y) \\",
    "line_separator": "line\u2028## heading after a line separator\u2029> quote",
    "rlo_filename": "invoice\u202egpj.exe",
    "every_bidi_control": "a\u202ab\u202bc\u202cd\u202de\u202ef\u2066g\u2067h\u2068i\u2069j\u200ek\u200fl\u061cm",
}
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
BENIGN_TITLE = "广州市实时交通流量数据 Guangzhou real-time traffic flow"
TAG = re.compile(r"<([a-zA-Z][a-zA-Z0-9]*)")
UNESCAPED_LINK = re.compile(r"(?<!\\)\]\s*[(\[]")


def render_html(markdown: str) -> str:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


def document(api, payload: str, tag: str) -> tuple[dict, str]:
    vendor = api.vendor(name=f"{payload} 卖方 {tag}")
    buyer = api.enterprise(name=f"{payload} 买方 {tag}")
    contract = contract_for(api, vendor, buyer, title=f"{BENIGN_TITLE} {payload}",
                            scenarios=[payload, f"交通信号配时优化 {payload}"])
    sign(api, buyer, contract["id"])
    r = api.get(f"contracts/{contract['id']}/document", buyer)
    assert r.status_code == 200 and r.mimetype == "text/markdown"
    return contract, r.get_data(as_text=True)


@pytest.fixture
def baseline(api):
    """The document of a benign contract: its headings and rendered elements are the template's."""
    _, text = document(api, "正常 plain", "base")
    return text, Counter(TAG.findall(render_html(text)))


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_user_text_cannot_inject_markup_into_the_contract_document(api, baseline, name):
    payload = PAYLOADS[name]
    base_text, base_tags = baseline
    contract, text = document(api, payload, name)

    # The raw Markdown: no HTML tag, no link/image syntax, no bidi control, no injected block.
    assert "<" not in text and ">" not in text, text  # the template itself has neither
    assert not UNESCAPED_LINK.search(text), text
    assert not re.search(r"(?<!\\)\|", text), text  # no table cell
    assert not re.search(r"(?<!\\)://|(?i:www)\.", text), text  # no GFM autolink literal
    assert not set(text) & BIDI_CONTROLS
    assert "\u2028" not in text and "\u2029" not in text
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings == [line for line in base_text.splitlines() if line.startswith("#")]
    # Every line of the document starts as the template's does: no block the payload opened.
    assert [line[:2] for line in text.splitlines()] == [line[:2] for line in base_text.splitlines()]

    # Rendered as a client would: exactly the template's elements, none the attacker supplied.
    html = render_html(text)
    assert Counter(TAG.findall(html)) == base_tags, html
    for needle in ("<img", "<script", "<a ", "<a>", "<h3", "<blockquote", "<table", "<!--", "<details", "<del>"):
        assert needle not in html.lower(), (needle, html)
    assert not re.search(r"<[a-zA-Z][^>]*\s[a-zA-Z-]+=", html), html  # no element with an attribute

    # Still readable: the benign Chinese title and the payload's visible text survive; bidi controls show.
    assert BENIGN_TITLE in text
    visible = "".join(f"<U+{ord(ch):04X}>" if ch in BIDI_CONTROLS else " " if ch in "\u2028\u2029" else ch
                      for ch in payload)
    assert f"- 产品 Product: {BENIGN_TITLE} {visible} (" in unescape(text)

    # The stored terms and the digest are untouched (the digest is over the frozen terms, not the document).
    fields = ("number", "buyer_org_id", "seller_org_id", "product_id", "product_version", "certificate_number",
              "price", "terms")
    assert hashlib.sha256(rfc8785.dumps({f: contract[f] for f in fields})).hexdigest() == contract["digest"]
    assert contract["digest"] in text


def unescape(markdown: str) -> str:
    """What a reader sees of escaped text: backslash escapes and entities resolved."""
    return htmllib.unescape(re.sub(r"\\(.)", r"\1", markdown))


@pytest.mark.parametrize(("raw", "escaped"), [
    ("广州市 交通", "广州市 交通"),
    ("a<b>&c", "a&lt;b&gt;&amp;c"),
    ("[x](http://e/)", "\\[x\\]\\(http\\://e/\\)"),
    ("# h", "\\# h"),
    ("a|b", "a\\|b"),
    ("line1\nline2\r\nline3", "line1 line2 line3"),
    ("x\u202ey", "x&lt;U+202E&gt;y"),
])
def test_escape_markdown_examples(raw, escaped):
    from exchange.text import escape_markdown

    assert escape_markdown(raw) == escaped


def test_escape_markdown_multiline_neutralizes_block_syntax():
    from exchange.text import escape_markdown

    out = escape_markdown("# title\n> quote\n- item\n1. first\n    code\n===", multiline=True)
    html = render_html(out)
    for needle in ("<h", "<blockquote", "<ul", "<ol", "<pre", "<code"):
        assert needle not in html, (needle, html)
    assert html.count("<p>") == 1


def test_escape_html_and_strip_bidi():
    from exchange.text import escape_html, strip_bidi

    assert escape_html("<a href=\"x\">'&'</a>") == "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;&#x27;&lt;/a&gt;"
    assert strip_bidi("a\u202eb\u2066c\u200fd\u061ce") == "a<U+202E>b<U+2066>c<U+200F>d<U+061C>e"
