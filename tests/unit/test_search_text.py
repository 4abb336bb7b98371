"""Segmentation and query building of the catalog search (no database)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from listings.search import fts5_query, index_text, index_tokens, normalize, query_terms


@pytest.mark.parametrize(("query", "title"), [
    ("交通", "广州市实时交通流量数据"),
    ("流量", "广州市实时交通流量数据"),
    ("交通流量", "广州市实时交通流量数据"),
    ("广州市", "广州市实时交通流量数据"),
    ("电力", "珠三角电力负荷曲线"),
    ("负荷", "珠三角电力负荷曲线"),
    ("负荷曲线", "珠三角电力负荷曲线"),
    ("电力负荷", "珠三角电力负荷曲线"),
    ("珠三角", "珠三角电力负荷曲线"),
])
def test_chinese_words_of_a_query_are_in_the_segmented_title(query, title):
    indexed = set(index_tokens(title))
    terms = query_terms(query)
    assert terms and set(terms) <= indexed, (terms, indexed)


def test_a_word_not_in_the_title_is_not_found():
    assert not set(query_terms("电力")) <= set(index_tokens("广州市实时交通流量数据"))


def test_traditional_full_width_and_accents_are_normalized():
    assert normalize("香港金融數據") == "香港金融数据"
    assert normalize("ＴＲＡＦＦＩＣ") == "traffic"
    assert normalize("Café São") == "cafe sao"
    assert query_terms("數據") == ["数据"]
    assert set(query_terms("信貸風險")) <= set(index_tokens("中小企业信贷风险评分"))


def test_english_and_mixed_text():
    assert query_terms("Real-time TRAFFIC flow") == ["real", "time", "traffic", "flow"]
    assert query_terms("广州 traffic") == ["广州", "traffic"]
    assert "5g" in index_tokens("5G基站信令") and "基站" in index_tokens("5G基站信令")


def test_query_syntax_characters_are_not_terms():
    assert query_terms('" * ( ) : ^ -- \' ; {} NEAR(') == ["near"]
    assert query_terms("") == [] and query_terms("   ") == [] and query_terms("。，！") == []


def test_terms_are_deduplicated_and_bounded():
    assert query_terms("traffic traffic Traffic") == ["traffic"]
    many = " ".join(f"w{i}" for i in range(100))
    assert len(query_terms(many)) == 32


def test_fts5_query_quotes_every_term():
    assert fts5_query(["交通", "or"]) == '"交通" "or"'
    assert fts5_query(['a"b']) == '"a""b"'


def test_index_text_of_keywords_joins_them():
    assert index_text(["交通", "traffic"]) == "交通 traffic"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_terms_of_any_text_are_plain_words(q):
    for term in query_terms(q):
        assert term and term == term.strip() and '"' not in term and len(term) <= 64
    assert fts5_query(query_terms(q)).count('"') % 2 == 0
