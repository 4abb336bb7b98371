"""The cross-border legal path: every row of the rule table at, below and above its thresholds, the GBA
substitution (and where it must not apply), and properties: total over valid flows, monotone in the counts."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certification.paths import (
    GBA_CITIES,
    GD_CITIES,
    PATHS,
    RANK,
    RULE_TABLE_VERSION,
    RULES,
    ZONES,
    Flow,
    PathDecision,
    decide,
    resolve_city,
    table_digest,
)

# The digest of RULES for each version. A row changed without a version bump fails test_the_version_pins_the_table.
DIGESTS = {"2024-03-22/gba-2024-09-10/r1": "198ee060d75b711fdeabcccf8f772fb03cc0d894fbb57b10aa74441a55dad07e"}

RULE_BY_ID = {rule.id: rule for rule in RULES}
NON_GBA_GD_CITIES = GD_CITIES[len(GBA_CITIES):]


def flow(**overrides) -> Flow:
    base = {"classification": "general", "personal_info": True, "sensitive": False, "subjects": 1,
            "sensitive_subjects": 0, "exporter_region": "CN", "exporter_city": None, "importer_region": "INTL"}
    return Flow(**{**base, **overrides})


def sensitive(count: int, subjects: int | None = None, **overrides) -> Flow:
    """Sensitive personal information of `count` individuals; `subjects` (all individuals) is at least `count`."""
    return flow(sensitive=True, sensitive_subjects=count, subjects=max(count, subjects or 1), **overrides)


# (case id, flow, expected path, the rule ids that decide it)
CASES = [
    # general-no-pi: Art. 3 — no personal information, general data; the exporter's earlier count is irrelevant
    ("no-pi", flow(personal_info=False, subjects=0), "no_personal_info", ("general-no-pi",)),
    ("no-pi-big-prior-count", flow(personal_info=False, subjects=5_000_000), "no_personal_info", ("general-no-pi",)),
    # pi-under-100k: Art. 5(4)
    ("pi-1", flow(subjects=1), "exempt_small_volume", ("pi-under-100k",)),
    ("pi-99999", flow(subjects=99_999), "exempt_small_volume", ("pi-under-100k",)),
    # pi-100k-to-1m: Art. 8, both ends inclusive
    ("pi-100000", flow(subjects=100_000), "standard_contract", ("pi-100k-to-1m",)),
    ("pi-100001", flow(subjects=100_001), "standard_contract", ("pi-100k-to-1m",)),
    ("pi-999999", flow(subjects=999_999), "standard_contract", ("pi-100k-to-1m",)),
    ("pi-1000000", flow(subjects=1_000_000), "standard_contract", ("pi-100k-to-1m",)),
    # pi-over-1m: Art. 7(2)
    ("pi-1000001", flow(subjects=1_000_001), "security_assessment", ("pi-over-1m",)),
    ("pi-5000000", flow(subjects=5_000_000), "security_assessment", ("pi-over-1m",)),
    # spi-under-10k: Art. 8 — any sensitive personal information is at least the standard contract
    ("spi-0", flow(sensitive=True, sensitive_subjects=0), "standard_contract", ("spi-under-10k",)),
    ("spi-1", sensitive(1), "standard_contract", ("spi-under-10k",)),
    ("spi-9999", sensitive(9_999), "standard_contract", ("spi-under-10k",)),
    # spi-10k-or-more: Art. 7(2)
    ("spi-10000", sensitive(10_000), "security_assessment", ("spi-10k-or-more",)),
    ("spi-10001", sensitive(10_001), "security_assessment", ("spi-10k-or-more",)),
    # sensitive plus a large total: both standard-contract rows decide; then the total alone forces the assessment
    ("spi-9999-total-100000", sensitive(9_999, subjects=100_000), "standard_contract",
     ("pi-100k-to-1m", "spi-under-10k")),
    ("spi-1-total-1000001", sensitive(1, subjects=1_000_001), "security_assessment", ("pi-over-1m",)),
    # important-data: Art. 7(2), whatever the volume
    ("important-no-pi", flow(classification="important", personal_info=False), "security_assessment",
     ("important-data",)),
    ("important-small-pi", flow(classification="important", subjects=10), "security_assessment",
     ("important-data",)),
    # core-data: never crosses; security_assessment only keeps the function total
    ("core-no-pi", flow(classification="core", personal_info=False), "security_assessment", ("core-data",)),
    ("core-small-pi", flow(classification="core", subjects=10), "security_assessment", ("core-data",)),
]


@pytest.mark.parametrize(("flow_", "path", "rule_ids"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_row_at_below_and_above_its_thresholds(flow_, path, rule_ids):
    decision = decide(flow_)
    assert decision.path == path
    assert decision.rule_ids == rule_ids
    assert decision.version == RULE_TABLE_VERSION
    assert len(decision.reasons) == len(rule_ids)
    for reason, rule_id in zip(decision.reasons, rule_ids, strict=True):
        assert reason.endswith(RULE_BY_ID[rule_id].source)


def test_every_base_row_is_exercised_and_every_path_reachable():
    base_ids = {rule.id for rule in RULES if rule.kind == "base"}
    assert base_ids <= {rule_id for *_, ids in CASES for rule_id in ids}
    reached = {c[2] for c in CASES} | {decide(flow(subjects=100_000, exporter_region="GD", exporter_city="shenzhen",
                                                    importer_region="HK")).path}
    assert reached == set(PATHS)


# -- the GBA substitution ---------------------------------------------------------------------------------------

OTHERWISE = [  # (case id, counts, the path it would otherwise need)
    ("pi-100000", {"subjects": 100_000}, "standard_contract"),
    ("pi-1000000", {"subjects": 1_000_000}, "standard_contract"),
    ("pi-1000001", {"subjects": 1_000_001}, "security_assessment"),
    ("spi-1", {"sensitive": True, "sensitive_subjects": 1}, "standard_contract"),
    ("spi-10000", {"sensitive": True, "sensitive_subjects": 10_000, "subjects": 10_000}, "security_assessment"),
]


@pytest.mark.parametrize("city", GBA_CITIES)
@pytest.mark.parametrize(("importer", "row"), [("HK", "gba-hk"), ("MO", "gba-mo")])
@pytest.mark.parametrize(("counts", "otherwise"), [c[1:] for c in OTHERWISE], ids=[c[0] for c in OTHERWISE])
def test_gba_substitution_for_each_city_and_both_sars(city, importer, row, counts, otherwise):
    intl = decide(flow(exporter_region="GD", exporter_city=city, importer_region="INTL", **counts))
    assert intl.path == otherwise
    decision = decide(flow(exporter_region="GD", exporter_city=city, importer_region=importer, **counts))
    assert decision.path == "gba_standard_contract"
    assert decision.rule_ids[-1] == row
    assert decision.rule_ids[:-1] == intl.rule_ids
    last = decision.reasons[-1]
    assert city.capitalize() in last and f"in place of {otherwise}" in last
    assert last.endswith(RULE_BY_ID[row].source)
    assert "Greater Bay Area" in last and ("Hong Kong" if importer == "HK" else "Macao") in last


@pytest.mark.parametrize("importer", ["HK", "MO"])
def test_gba_leaves_the_lighter_paths_alone(importer):
    here = {"exporter_region": "GD", "exporter_city": "shenzhen", "importer_region": importer}
    assert decide(flow(subjects=99_999, **here)).path == "exempt_small_volume"
    assert decide(flow(personal_info=False, **here)).path == "no_personal_info"


@pytest.mark.parametrize("counts", [c[1] for c in OTHERWISE], ids=[c[0] for c in OTHERWISE])
@pytest.mark.parametrize(("where", "importer"), [
    *[({"exporter_region": "GD", "exporter_city": c}, "INTL") for c in GBA_CITIES[:3]],
    *[({"exporter_region": "CN", "exporter_city": c}, sar) for c in ("shenzhen", None) for sar in ("HK", "MO")],
    *[({"exporter_region": "GD", "exporter_city": c}, sar) for c in NON_GBA_GD_CITIES for sar in ("HK", "MO")],
    ({"exporter_region": "GD", "exporter_city": None}, "HK"),
    ({"exporter_region": "GD", "exporter_city": "beijing"}, "MO"),
], ids=str)
def test_no_gba_substitution_outside_the_nine_cities_or_towards_intl(where, importer, counts):
    decision = decide(flow(importer_region=importer, **where, **counts))
    assert decision.path in ("standard_contract", "security_assessment")
    assert not {"gba-hk", "gba-mo"} & set(decision.rule_ids)


@pytest.mark.parametrize("city", GBA_CITIES)
@pytest.mark.parametrize("importer", ["HK", "MO"])
@pytest.mark.parametrize("classification", ["important", "core"])
def test_no_gba_substitution_for_important_or_core_data(city, importer, classification):
    decision = decide(flow(classification=classification, subjects=100_000, exporter_region="GD",
                           exporter_city=city, importer_region=importer))
    assert decision.path == "security_assessment"
    assert decision.rule_ids == (("important-data",) if classification == "important" else ("core-data",))


@pytest.mark.parametrize(("zone", "importer"), [(z, sar) for z in ZONES for sar in ("HK", "MO")])
def test_a_zone_counts_as_its_city(zone, importer):
    decision = decide(flow(subjects=200_000, exporter_region="GD", exporter_city=zone, importer_region=importer))
    assert decision.path == "gba_standard_contract"
    assert ZONES[zone].capitalize() in decision.reasons[-1]
    assert resolve_city(zone.upper()) == ZONES[zone]


# -- reasons, sources, the table itself --------------------------------------------------------------------------

def test_reasons_name_threshold_and_source():
    decision = decide(sensitive(12_000))
    assert decision == PathDecision(
        "security_assessment",
        ("sensitive personal information of 12,000 individuals this year (10,000 or more) needs a security "
         "assessment — Provisions on Promoting and Regulating Cross-border Data Flows (CAC, 22 March 2024), "
         "Art. 7(2); Measures on Security Assessment of Outbound Data Transfers (CAC, 2022)",),
        ("spi-10k-or-more",), RULE_TABLE_VERSION)
    assert "(fewer than 100,000)" in decide(flow(subjects=42_000)).reasons[0]
    assert "Art. 5(4)" in decide(flow(subjects=42_000)).reasons[0]
    assert "(100,000 to 1,000,000)" in decide(flow(subjects=1_000_000)).reasons[0]
    assert "Art. 8" in decide(flow(subjects=1_000_000)).reasons[0]
    assert "(more than 1,000,000)" in decide(flow(subjects=1_000_001)).reasons[0]
    assert "Art. 3" in decide(flow(personal_info=False)).reasons[0]
    assert "may not cross the border at all" in decide(flow(classification="core")).reasons[0]


def test_the_table_is_well_formed():
    ids = [rule.id for rule in RULES]
    assert len(ids) == len(set(ids))
    facts = {f.name for f in dataclasses.fields(Flow)} | {"exporter_prefecture"}
    for rule in RULES:
        assert rule.kind in ("base", "substitute")
        assert rule.path in PATHS
        assert set(rule.replaces) <= set(PATHS)
        assert (rule.kind == "substitute") == bool(rule.replaces)
        assert rule.source and "Art." in rule.source and rule.summary and rule.reason
        for name, op, _ in rule.when:
            assert name in facts and op in ("eq", "ne", "in", "not_in", "lt", "le", "gt", "ge")
    for rule in RULES:  # a substitution only ever lightens the path it replaces
        assert all(RANK[rule.path] < RANK[p] for p in rule.replaces)


def test_cities_and_zones():
    assert len(GBA_CITIES) == 9 and len(GD_CITIES) == 21 == len(set(GD_CITIES))
    assert GD_CITIES[:9] == GBA_CITIES and "shantou" in NON_GBA_GD_CITIES
    assert set(ZONES.values()) <= set(GBA_CITIES)
    assert [RANK[p] for p in PATHS] == list(range(5))


def test_the_version_pins_the_table():
    assert RULE_TABLE_VERSION in DIGESTS, "a new version needs its digest recorded here"
    assert table_digest(RULES) == DIGESTS[RULE_TABLE_VERSION], \
        "a row of RULES changed: bump RULE_TABLE_VERSION (see the module docstring) and record the new digest"


def test_an_empty_table_fails_safe():
    decision = decide(flow(), rules=())
    assert decision.path == "security_assessment" and decision.rule_ids == ()


@pytest.mark.parametrize("bad", [
    {"classification": "secret"}, {"exporter_region": "HK"}, {"importer_region": "CN"}, {"subjects": -1},
    {"sensitive_subjects": -1}, {"subjects": 1.5}, {"subjects": True}, {"personal_info": False, "sensitive": True},
], ids=str)
def test_invalid_flows_are_refused(bad):
    with pytest.raises(ValueError):
        flow(**bad)


# -- properties ----------------------------------------------------------------------------------------------------

COUNTS = st.one_of(st.integers(0, 2_000_000),
                   st.sampled_from([0, 1, 9_999, 10_000, 10_001, 99_999, 100_000, 100_001, 999_999, 1_000_000,
                                    1_000_001]))


@st.composite
def flows(draw) -> Flow:
    personal_info = draw(st.booleans())
    is_sensitive = personal_info and draw(st.booleans())
    return Flow(
        classification=draw(st.sampled_from(["general", "important", "core"])),
        personal_info=personal_info,
        sensitive=is_sensitive,
        subjects=draw(COUNTS),
        sensitive_subjects=draw(COUNTS) if is_sensitive else 0,
        exporter_region=draw(st.sampled_from(["GD", "CN"])),
        exporter_city=draw(st.sampled_from([None, *GD_CITIES, *ZONES, "beijing"])),
        importer_region=draw(st.sampled_from(["HK", "MO", "INTL"])),
    )


@given(flows())
def test_decide_is_total(f):
    decision = decide(f)
    assert decision.path in PATHS
    assert decision.rule_ids and set(decision.rule_ids) <= set(RULE_BY_ID)
    assert len(decision.reasons) == len(decision.rule_ids)
    assert decision.version == RULE_TABLE_VERSION


@given(flows(), st.integers(0, 2_000_000))
def test_monotone_in_subjects(f, more):
    before = decide(f).path
    after = decide(dataclasses.replace(f, subjects=f.subjects + more)).path
    assert RANK[after] >= RANK[before]


@given(flows(), st.integers(0, 50_000))
def test_monotone_in_sensitive_subjects(f, more):
    if not f.sensitive:
        f = dataclasses.replace(f, personal_info=True, sensitive=True)
    before = decide(f).path
    after = decide(dataclasses.replace(f, sensitive_subjects=f.sensitive_subjects + more)).path
    assert RANK[after] >= RANK[before]


@given(flows())
def test_becoming_sensitive_never_lightens(f):
    if f.personal_info and not f.sensitive:
        assert RANK[decide(dataclasses.replace(f, sensitive=True, sensitive_subjects=1)).path] >= \
            RANK[decide(f).path]
