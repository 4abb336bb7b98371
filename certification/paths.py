"""The cross-border legal path of a personal-information or data flow, as one pure function over a rule table.

`decide(flow)` answers one question: which legal path does an outbound flow of data from the mainland take?
The answer is one of `PATHS`, a total order from lightest to heaviest:

    no_personal_info < exempt_small_volume < gba_standard_contract < standard_contract < security_assessment

The law lives in `RULES`, a versioned table of rows that are data: each row has an `id`, the `source` (legal
instrument with article/clause), a short `summary`, a `reason` template, and conditions written as
`(field, op, value)` triples read by a tiny matcher (`_holds`). Thresholds and the nine Greater Bay Area cities
are values in the rows, not code. Two kinds of rows:

* `base` rows: every base row whose conditions all hold "fires"; the flow takes the heaviest path among them.
* `substitute` rows: applied after the base step, in table order; when its conditions hold and the current
  path is one of the row's `replaces`, the path becomes the row's `path`. This is how the GBA standard contract
  replaces the national standard contract or (for personal-information volumes alone) the security assessment.

`PathDecision.rule_ids` lists the rows that decided the outcome: the base rows that fired with the chosen path,
then any substitute rows applied. Lighter base rows that also fired are not listed (they did not decide).

Versioning. `RULE_TABLE_VERSION` reads `<national provisions date>/gba-<latest GBA guideline date>/r<n>`.
Bump rule: ANY change to a row of `RULES` (a condition, threshold, path, source, summary or reason text, a row
added, removed or reordered) changes the version — `r<n>` goes up by one, and a date part changes when the row
follows a new legal instrument. `table_digest(RULES)` is a fingerprint of the table; the unit test pins the digest
to the version so that a row cannot change silently. A dossier stores `version` with the decision, so an old
decision can always be read against the table that produced it.

Cumulative counts. `Flow.subjects` is the exporter's cumulative number of individuals whose personal information
it has sent abroad since 1 January of the current year in China Standard Time, THIS deal included;
`Flow.sensitive_subjects` is the same count for sensitive personal information. The caller computes them; this
module has no database and no clock. The non-sensitive thresholds are applied to `subjects` as a whole; when part
of that count is sensitive this can only err towards a heavier path.

Sources are cited from secondary sources (official summaries, law-firm and regulator commentary); clause numbers
marked as such in docs/compliance.md could not be checked against the original gazetted text. The table also
assumes the exporter is NOT a critical information infrastructure operator (CIIO): a CIIO needs a security
assessment for any personal information (Provisions 2024, Art. 7(1)), which `Flow` does not model. The other
exemptions of Art. 5(1)-(3) (contracts with the individual, HR management, emergencies), Art. 4 and the free
trade zone negative lists of Art. 6 are not modelled either; the table never uses them to lighten a path.

Pure: no database, no clock, no Flask (it imports only the kernel's list of places).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from exchange.identity.states import GBA_CITIES, GD_CITIES, ZONES

PATHS = ("no_personal_info", "exempt_small_volume", "gba_standard_contract", "standard_contract",
         "security_assessment")
RANK = {p: i for i, p in enumerate(PATHS)}

# The places are the kernel's values (where organizations state them), re-exported for the rows.
__all__ = ["GBA_CITIES", "GD_CITIES", "PATHS", "RANK", "ZONES", "Flow", "PathDecision", "Rule", "decide"]

CLASSIFICATIONS = ("general", "important", "core")
EXPORTER_REGIONS = ("GD", "CN")
IMPORTER_REGIONS = ("HK", "MO", "INTL")

RULE_TABLE_VERSION = "2024-03-22/gba-2024-09-10/r1"

# Legal instruments, cited by the rows. English titles follow common translations; see docs/compliance.md.
PROVISIONS = "Provisions on Promoting and Regulating Cross-border Data Flows (CAC, 22 March 2024)"
SC_MEASURES = "Measures on the Standard Contract for Personal Information Export (CAC, 2023)"
SA_MEASURES = "Measures on Security Assessment of Outbound Data Transfers (CAC, 2022)"
DSL = "Data Security Law of the PRC (2021)"
GBA_HK = ("Implementation Guidelines on the Standard Contract for Cross-boundary Flow of Personal Information "
          "within the Guangdong-Hong Kong-Macao Greater Bay Area (Mainland, Hong Kong) (CAC & HKSAR ITIB, "
          "December 2023)")
GBA_MO = ("Implementation Guidelines on the Standard Contract for Cross-boundary Flow of Personal Information "
          "within the Guangdong-Hong Kong-Macao Greater Bay Area (Mainland, Macao) (CAC, Macao DSEDT & DSPDP, "
          "10 September 2024)")

EXEMPT_BELOW = 100_000          # non-sensitive individuals: fewer than this is exempt
SECURITY_ABOVE = 1_000_000      # non-sensitive individuals: more than this needs a security assessment
SENSITIVE_SECURITY_FROM = 10_000  # sensitive individuals: this many or more needs a security assessment


@dataclass(frozen=True)
class Rule:
    """One row of the rule table. `when` is a tuple of `(field, op, value)` conditions, all of which must hold."""

    id: str
    kind: str  # "base" | "substitute"
    path: str  # base: the path the row picks; substitute: the path it puts in
    when: tuple[tuple[str, str, Any], ...]
    source: str
    summary: str
    reason: str  # str.format template over the flow's fields (see `_facts`)
    replaces: tuple[str, ...] = ()  # substitute rows only: the paths they replace


_GBA_WHEN = (("classification", "eq", "general"), ("personal_info", "eq", True), ("exporter_region", "eq", "GD"),
             ("exporter_prefecture", "in", GBA_CITIES))

RULES: tuple[Rule, ...] = (
    Rule(
        id="core-data", kind="base", path="security_assessment",
        when=(("classification", "eq", "core"),),
        source=f"{DSL}, Art. 21 (national core data under a stricter management regime); exchange policy: "
               "core data never crosses",
        summary="core data may not cross the border at all",
        reason="core data may not cross the border at all: the deal must not proceed, and security_assessment is "
               "returned only so that every flow has a path — {source}",
    ),
    Rule(
        id="important-data", kind="base", path="security_assessment",
        when=(("classification", "eq", "important"),),
        source=f"{PROVISIONS}, Art. 7(2); {SA_MEASURES}, Art. 4(1)",
        summary="important data needs a security assessment",
        reason="important data needs a security assessment whatever the volume — {source}",
    ),
    Rule(
        id="general-no-pi", kind="base", path="no_personal_info",
        when=(("classification", "eq", "general"), ("personal_info", "eq", False)),
        source=f"{PROVISIONS}, Art. 3",
        summary="general data without personal information or important data is exempt",
        reason="general data without personal information or important data is exempt from the security "
               "assessment, the standard contract and certification — {source}",
    ),
    Rule(
        id="pi-under-100k", kind="base", path="exempt_small_volume",
        when=(("personal_info", "eq", True), ("sensitive", "eq", False), ("subjects", "lt", EXEMPT_BELOW)),
        source=f"{PROVISIONS}, Art. 5(4)",
        summary="non-sensitive personal information of fewer than 100,000 individuals this year is exempt",
        reason="non-sensitive personal information of {subjects:,} individuals this year (fewer than 100,000) is "
               "exempt — {source}",
    ),
    Rule(
        id="pi-100k-to-1m", kind="base", path="standard_contract",
        when=(("personal_info", "eq", True), ("subjects", "ge", EXEMPT_BELOW), ("subjects", "le", SECURITY_ABOVE)),
        source=f"{PROVISIONS}, Art. 8; {SC_MEASURES}",
        summary="personal information of 100,000 to 1,000,000 individuals this year needs the standard contract "
                "(or certification)",
        reason="personal information of {subjects:,} individuals this year (100,000 to 1,000,000) needs the "
               "standard contract or certification — {source}",
    ),
    Rule(
        id="pi-over-1m", kind="base", path="security_assessment",
        when=(("personal_info", "eq", True), ("subjects", "gt", SECURITY_ABOVE)),
        source=f"{PROVISIONS}, Art. 7(2); {SA_MEASURES}",
        summary="personal information of more than 1,000,000 individuals this year needs a security assessment",
        reason="personal information of {subjects:,} individuals this year (more than 1,000,000) needs a security "
               "assessment — {source}",
    ),
    Rule(
        id="spi-under-10k", kind="base", path="standard_contract",
        when=(("personal_info", "eq", True), ("sensitive", "eq", True),
              ("sensitive_subjects", "lt", SENSITIVE_SECURITY_FROM)),
        source=f"{PROVISIONS}, Art. 8; {SC_MEASURES}",
        summary="sensitive personal information of fewer than 10,000 individuals this year needs the standard "
                "contract (or certification)",
        reason="sensitive personal information of {sensitive_subjects:,} individuals this year (fewer than 10,000) "
               "needs the standard contract or certification — {source}",
    ),
    Rule(
        id="spi-10k-or-more", kind="base", path="security_assessment",
        when=(("personal_info", "eq", True), ("sensitive", "eq", True),
              ("sensitive_subjects", "ge", SENSITIVE_SECURITY_FROM)),
        source=f"{PROVISIONS}, Art. 7(2); {SA_MEASURES}",
        summary="sensitive personal information of 10,000 or more individuals this year needs a security "
                "assessment",
        reason="sensitive personal information of {sensitive_subjects:,} individuals this year (10,000 or more) "
               "needs a security assessment — {source}",
    ),
    Rule(
        id="gba-hk", kind="substitute", path="gba_standard_contract",
        replaces=("standard_contract", "security_assessment"),
        when=(*_GBA_WHEN, ("importer_region", "eq", "HK")),
        source=f"{GBA_HK}, Art. 2-3 (scope: the nine mainland GBA cities and Hong Kong; no important data; "
               "no volume limit)",
        summary="personal information (no important data) from one of the nine GBA cities to Hong Kong may use "
                "the GBA standard contract instead",
        reason="personal information without important data from {exporter_city} (a mainland GBA city) to Hong "
               "Kong may use the GBA standard contract in place of {replaced}, with no volume limit — {source}",
    ),
    Rule(
        id="gba-mo", kind="substitute", path="gba_standard_contract",
        replaces=("standard_contract", "security_assessment"),
        when=(*_GBA_WHEN, ("importer_region", "eq", "MO")),
        source=f"{GBA_MO}, Art. 2-3 (scope: the nine mainland GBA cities and Macao; no important data; "
               "no volume limit)",
        summary="personal information (no important data) from one of the nine GBA cities to Macao may use "
                "the GBA standard contract instead",
        reason="personal information without important data from {exporter_city} (a mainland GBA city) to Macao "
               "may use the GBA standard contract in place of {replaced}, with no volume limit — {source}",
    ),
)


@dataclass(frozen=True)
class Flow:
    """One outbound flow, as the exchange knows it when a deal is decided.

    `subjects` / `sensitive_subjects`: the exporter's cumulative individuals sent abroad since 1 January of the
    year in China Standard Time, this deal included (`sensitive_subjects` is 0 when the data is not sensitive and
    is ignored then). `exporter_city` is a lowercase pinyin slug of a Guangdong city (`GD_CITIES`) or of a zone in
    `ZONES` (resolved to its city); it only matters when `exporter_region` is "GD".
    """

    classification: str
    personal_info: bool
    sensitive: bool
    subjects: int
    sensitive_subjects: int
    exporter_region: str
    exporter_city: str | None
    importer_region: str

    def __post_init__(self) -> None:
        if self.classification not in CLASSIFICATIONS:
            raise ValueError(f"classification must be one of {CLASSIFICATIONS}, not {self.classification!r}")
        if self.exporter_region not in EXPORTER_REGIONS:
            raise ValueError(f"exporter_region must be one of {EXPORTER_REGIONS}, not {self.exporter_region!r}")
        if self.importer_region not in IMPORTER_REGIONS:
            raise ValueError(f"importer_region must be one of {IMPORTER_REGIONS}, not {self.importer_region!r}")
        for name in ("subjects", "sensitive_subjects"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
        if self.sensitive and not self.personal_info:
            raise ValueError("sensitive personal information is personal information: sensitive needs personal_info")


@dataclass(frozen=True)
class PathDecision:
    path: str
    reasons: tuple[str, ...]
    rule_ids: tuple[str, ...]
    version: str


def resolve_city(city: str | None) -> str | None:
    """The prefecture-level city of an exporter's city or zone slug (`hengqin` -> `zhuhai`), lowercased."""
    if city is None:
        return None
    slug = city.strip().lower()
    return ZONES.get(slug, slug)


def _facts(flow: Flow) -> dict[str, Any]:
    facts = {f.name: getattr(flow, f.name) for f in fields(flow)}
    facts["exporter_prefecture"] = resolve_city(flow.exporter_city)
    return facts


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "in": lambda a, b: a in b,
    "not_in": lambda a, b: a not in b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}


def _holds(rule: Rule, facts: dict[str, Any]) -> bool:
    return all(_OPS[op](facts[name], value) for name, op, value in rule.when)


def _reason(rule: Rule, facts: dict[str, Any], replaced: str | None = None) -> str:
    city = facts["exporter_prefecture"]
    shown = {**facts, "source": rule.source, "replaced": replaced or "",
             "exporter_city": (city or "").capitalize()}
    return rule.reason.format(**shown)


def decide(flow: Flow, rules: Sequence[Rule] = RULES) -> PathDecision:
    """The legal path of `flow` under `rules`: heaviest firing base row, then substitutions in table order.

    Total: with `RULES` every valid `Flow` fires at least one base row. Should a custom table fire none, the
    heaviest path is returned (fail safe) with no rule ids and a reason saying so.
    """
    facts = _facts(flow)
    fired = [rule for rule in rules if rule.kind == "base" and _holds(rule, facts)]
    if not fired:
        return PathDecision("security_assessment",
                            (f"no row of rule table {RULE_TABLE_VERSION} matched this flow; the heaviest path "
                             "applies until the table is corrected",), (), RULE_TABLE_VERSION)
    path = max((rule.path for rule in fired), key=RANK.__getitem__)
    deciding = [rule for rule in fired if rule.path == path]
    reasons = [_reason(rule, facts) for rule in deciding]
    rule_ids = [rule.id for rule in deciding]
    for rule in rules:
        if rule.kind == "substitute" and path in rule.replaces and _holds(rule, facts):
            reasons.append(_reason(rule, facts, replaced=path))
            rule_ids.append(rule.id)
            path = rule.path
    return PathDecision(path, tuple(reasons), tuple(rule_ids), RULE_TABLE_VERSION)


def table_digest(rules: Sequence[Rule] = RULES) -> str:
    """A sha256 fingerprint of a rule table (every field of every row, in order): pinned to the version by a test."""
    return hashlib.sha256(repr(tuple(rules)).encode("utf-8")).hexdigest()
