"""Bilingual full-text search of the catalog on SQLite (FTS5) and PostgreSQL (tsvector + GIN).

Chinese has no spaces, so text is segmented with jieba's `cut_for_search` (which also emits the
two- and three-character words inside longer ones: 交通流量 -> 交通, 流量, 交通流量) both when a
product is indexed and when a query is read; the index holds the segmented form. Text is
normalized first (NFKC, traditional -> simplified, lower case, no diacritics) so that Hong Kong and
Macao spellings (數據) find simplified ones (数据) and full-width letters find ASCII ones.

User input never reaches SQL as syntax: on SQLite every term is a quoted FTS5 string (quotes
doubled) bound as a parameter; on PostgreSQL the terms go to `plainto_tsquery('simple', :q)`.
Only listed products are in the index.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, column, func, literal_column, select, table, text, update
from sqlalchemy.orm import Session

from exchange.db import dialect_name
from listings.models import Product, ProductVersion

MAX_QUERY_TERMS = 32
MAX_TERM_LENGTH = 64
# Column weights: a word in the title or keywords counts more than one deep in the description.
FTS5_WEIGHTS = (0.0, 10.0, 4.0, 1.0, 8.0)  # product_id (unindexed), title, summary, description, keywords
PG_CONFIG = literal_column("'simple'::regconfig")

_lock = threading.Lock()
_tokenizer: Any = None
_converter: Any = None
_WORD = re.compile(r"[^\W_]+")
_HAN = re.compile(r"([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]+)")

# A Core handle on SQLite's hand-made FTS5 table (not in the ORM metadata).
fts5 = table("product_fts", column("rowid"), column("product_id"), column("title"), column("summary"),
             column("description"), column("keywords"))


def segmenter() -> Any:
    """jieba's tokenizer, loaded once per process on first use (~1 s; gunicorn preloads it)."""
    global _tokenizer
    if _tokenizer is None:
        with _lock:
            if _tokenizer is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                _tokenizer = tokenizer
    return _tokenizer


def _t2s() -> Any:
    global _converter
    if _converter is None:
        with _lock:
            if _converter is None:
                import opencc

                _converter = opencc.OpenCC("t2s")
    return _converter


def warm_up() -> None:
    """Load the segmenter and the converter now (before forking workers)."""
    segmenter()
    _t2s()
    index_tokens("数据 data")


def normalize(value: str) -> str:
    """NFKC, traditional -> simplified Chinese, lower case, diacritics removed."""
    value = unicodedata.normalize("NFKC", value)
    if _HAN.search(value):
        value = _t2s().convert(value)
    value = value.lower()
    if not value.isascii():
        decomposed = unicodedata.normalize("NFD", value)
        value = unicodedata.normalize("NFC", "".join(ch for ch in decomposed if not unicodedata.combining(ch)))
    return value


@lru_cache(maxsize=200_000)
def _segment_han(run: str) -> tuple[str, ...]:
    return tuple(w for w in segmenter().cut_for_search(run) if w.strip())


@lru_cache(maxsize=50_000)
def _coarse_han(run: str) -> tuple[str, ...]:
    return tuple(w for w in segmenter().cut(run) if w.strip())


def _runs(value: str) -> Iterator[tuple[str, bool]]:
    """(run, is_han) for each run of letters/digits, Han runs split from the rest."""
    for word in _WORD.findall(normalize(value)):
        for i, part in enumerate(_HAN.split(word)):
            if part:
                yield part, i % 2 == 1


def index_tokens(value: str) -> list[str]:
    """The tokens indexed for a text: Han runs segmented for search, other words as they are."""
    out: list[str] = []
    for run, is_han in _runs(value):
        if is_han:
            out.extend(_segment_han(run))
        else:
            out.append(run[:MAX_TERM_LENGTH])
    return out


def index_text(value: str | Iterable[str]) -> str:
    """The segmented form of a text (or of several, e.g. keywords) as the index stores it."""
    if not isinstance(value, str):
        value = " \n ".join(value)
    return " ".join(index_tokens(value))


def _han_query_terms(run: str) -> list[str]:
    """Terms for a Han run of a query: each word, or the smaller dictionary words that tile it.

    A query word such as 负荷曲线 may be one word for jieba in the query and two (负荷 曲线) in a
    document; requiring the two- and three-character dictionary words it is made of matches both
    (the index holds them either way: `cut_for_search` emits them inside longer words). A word that
    cannot be tiled so (珠三角: 珠 is no word) is required whole.
    """
    terms: list[str] = []
    for word in _coarse_han(run):
        terms.extend(_tiling(word) or [word])
    return terms


@lru_cache(maxsize=50_000)
def _tiling(word: str) -> tuple[str, ...] | None:
    """The fewest dictionary words of 2-3 characters, shorter than `word`, that spell it; else None."""
    if len(word) <= 2:
        return None
    freq = segmenter().FREQ
    best: list[tuple[str, ...] | None] = [()] + [None] * len(word)
    for end in range(2, len(word) + 1):
        for size in (2, 3):
            start = end - size
            piece = word[start:end]
            if start < 0 or size >= len(word) or best[start] is None or not freq.get(piece):
                continue
            candidate = (*best[start], piece)
            if best[end] is None or len(candidate) < len(best[end]):
                best[end] = candidate
    return best[len(word)]


def query_terms(q: str) -> list[str]:
    """The terms a query requires (all of them), deduplicated, at most MAX_QUERY_TERMS."""
    terms: list[str] = []
    for run, is_han in _runs(q[:1000]):
        for term in (_han_query_terms(run) if is_han else [run[:MAX_TERM_LENGTH]]):
            if term not in terms:
                terms.append(term)
    return terms[:MAX_QUERY_TERMS]


def fts5_query(terms: Iterable[str]) -> str:
    """An FTS5 MATCH expression requiring every term, each a quoted string (no query syntax)."""
    return " ".join('"' + t.replace('"', '""') + '"' for t in terms)



# -- the index ------------------------------------------------------------------------------------

def document(version: ProductVersion) -> dict[str, str]:
    """The segmented text of a revision, per indexed column."""
    return {
        "title": index_text(version.title),
        "summary": index_text(version.summary),
        "description": index_text(version.description),
        "keywords": index_text(version.keywords or []),
    }


def pg_document(title: Any, keywords: Any, summary: Any, description: Any) -> ColumnElement[Any]:
    """The weighted tsvector of segmented texts: title and keywords weigh most (A), then the
    summary (B), then the description (C). Arguments are values or bind parameters."""
    def part(value: Any, weight: str) -> ColumnElement[Any]:
        return func.setweight(func.to_tsvector(PG_CONFIG, value), literal_column(f"'{weight}'"))

    return part(title, "A").op("||")(part(keywords, "A")).op("||")(part(summary, "B")).op("||")(
        part(description, "C"))


SQLITE_INSERT = text(
    "INSERT INTO product_fts (rowid, product_id, title, summary, description, keywords) "
    "VALUES (:rowid, :product_id, :title, :summary, :description, :keywords)"
)


def index_product(session: Session, product: Product, version: ProductVersion) -> None:
    """Put (or replace) a product's shown revision in the full-text index."""
    doc = document(version)
    if dialect_name(session) == "postgresql":
        session.execute(update(Product).where(Product.id == product.id).values(search_document=pg_document(
            doc["title"], doc["keywords"], doc["summary"], doc["description"])))
        return
    if product.search_rowid is not None:
        session.execute(text("DELETE FROM product_fts WHERE rowid = :r"), {"r": product.search_rowid})
        rowid = product.search_rowid
    else:
        # SQLite has one writer at a time (BEGIN IMMEDIATE): max + 1 cannot race.
        rowid = session.execute(text("SELECT coalesce(max(rowid), 0) + 1 FROM product_fts")).scalar_one()
        product.search_rowid = rowid
    session.execute(SQLITE_INSERT, {"rowid": rowid, "product_id": product.id, **doc})


def unindex_product(session: Session, product: Product) -> None:
    """Take a product out of the full-text index (suspended or delisted)."""
    if dialect_name(session) == "postgresql":
        session.execute(update(Product).where(Product.id == product.id).values(search_document=None))
    elif product.search_rowid is not None:
        session.execute(text("DELETE FROM product_fts WHERE rowid = :r"), {"r": product.search_rowid})
        product.search_rowid = None


def match(session: Session, stmt: Select, terms: list[str]) -> tuple[Select, ColumnElement[float]]:
    """Join the index to a select over Product, keep the products matching every term.

    Returns the narrowed select and the relevance expression (higher is better).
    """
    if dialect_name(session) == "postgresql":
        tsquery = func.plainto_tsquery(PG_CONFIG, " ".join(terms))
        score = func.ts_rank(Product.search_document, tsquery)
        return stmt.where(Product.search_document.op("@@")(tsquery)), score
    fts_table = literal_column("product_fts")
    score = -func.bm25(fts_table, *FTS5_WEIGHTS)
    stmt = stmt.join(fts5, fts5.c.rowid == Product.search_rowid).where(fts_table.op("MATCH")(fts5_query(terms)))
    return stmt, score


@dataclass(frozen=True)
class TextMatch:
    """Filters over Product for the trading matcher (see `text_match`)."""

    hits: ColumnElement[int]
    any_query: ColumnElement[bool] | None
    every_required: ColumnElement[bool] | None


def text_match(session: Session, *, queries: list[str], required: list[str]) -> TextMatch:
    """How many of `queries` a listed product matches (every term of a query in its indexed text),
    and filters for "matches any query" (meant next to a narrower indexed filter, such as a
    category) and "matches every `required` query" (None when a list has no searchable word).
    Index-backed on both engines: PostgreSQL's GIN index, SQLite's FTS5 table (each query's
    matching rowids read once per statement).
    """
    term_lists = [t for t in (query_terms(q) for q in queries) if t]
    required_lists = [t for t in (query_terms(q) for q in required) if t]
    if dialect_name(session) == "postgresql":
        def matches(lists: list[list[str]], op: str) -> ColumnElement[bool]:
            tsq = func.plainto_tsquery(PG_CONFIG, " ".join(lists[0]))
            for terms in lists[1:]:
                tsq = tsq.op(op)(func.plainto_tsquery(PG_CONFIG, " ".join(terms)))
            return Product.search_document.op("@@")(tsq)
    else:
        def matches(lists: list[list[str]], op: str) -> ColumnElement[bool]:
            joiner = " OR " if op == "||" else " AND "
            expr = joiner.join(f"({fts5_query(terms)})" for terms in lists)
            rowids = select(fts5.c.rowid).where(literal_column("product_fts").op("MATCH")(expr))
            # "Any query" matches thousands: `+ 0` keeps SQLite from driving the query from that list
            # (a lookup and a sort per match); it walks the narrower index next to it instead and
            # tests each row against the list. "Every query" matches few: driving from it is right.
            return (Product.search_rowid + 0 if op == "||" else Product.search_rowid).in_(rowids)

    hits: ColumnElement[int] = literal_column("0")
    for terms in term_lists:
        hits = hits + func.coalesce(matches([terms], "||").cast(Integer), 0)
    return TextMatch(hits=hits, any_query=matches(term_lists, "||") if term_lists else None,
                     every_required=matches(required_lists, "&&") if required_lists else None)
