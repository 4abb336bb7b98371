"""Money: integer minor units in the Bay Area's three currencies; the one rounding rule.

No float ever touches an amount. CNY (fen), HKD (cents) and MOP (avos) all have two decimals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

# RFC 8785 (and JavaScript clients) cannot represent integers beyond 2^53 - 1 exactly.
MAX_AMOUNT = 2**53 - 1


class Currency(StrEnum):
    CNY = "CNY"
    HKD = "HKD"
    MOP = "MOP"


CURRENCIES = tuple(c.value for c in Currency)
MINOR_DIGITS = {Currency.CNY: 2, Currency.HKD: 2, Currency.MOP: 2}
SYMBOLS = {Currency.CNY: "¥", Currency.HKD: "HK$", Currency.MOP: "MOP$"}


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: Currency

    def __post_init__(self) -> None:
        if type(self.amount) is not int:
            raise TypeError("Money.amount must be an int of minor units")
        object.__setattr__(self, "currency", Currency(self.currency))

    def as_dict(self) -> dict[str, object]:
        return {"amount": self.amount, "currency": self.currency.value}


def div_round_half_up(numerator: int, denominator: int) -> int:
    """Integer division rounded half away from zero: the exchange's single rounding rule."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    sign = -1 if numerator < 0 else 1
    q, r = divmod(abs(numerator), denominator)
    if 2 * r >= denominator:
        q += 1
    return sign * q


def fee_for(amount: int, bps: int) -> int:
    """The exchange fee in minor units: `amount * bps / 10000`, rounded half-up."""
    return div_round_half_up(amount * bps, 10_000)


def format_amount(amount: int, currency: str) -> str:
    """`1250000, "CNY"` -> `"CNY 12,500.00"` (exact: integer arithmetic only)."""
    digits = MINOR_DIGITS[Currency(currency)]
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(amount), 10**digits)
    return f"{currency} {sign}{major:,}.{minor:0{digits}d}"


# A typed amount in major units: digits with optional thousands commas, optional decimals.
_TYPED = re.compile(r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?")


def parse_major(text: str, currency: str) -> int:
    """What a person types (`"12,500.50"`, `"CNY 12500.5"`, fullwidth comma) -> exact minor units (1250050).

    Integer arithmetic only. Raises ValueError for anything else: more decimals than the currency
    has, a sign, an exponent, an unknown currency, more than MAX_AMOUNT."""
    digits = MINOR_DIGITS[Currency(currency)]
    value = text.strip().replace("，", ",").replace(" ", "")
    if value.upper().startswith(currency):
        value = value[len(currency):]
    match = _TYPED.fullmatch(value)
    if match is None or len(match.group(2) or "") > digits:
        raise ValueError(f"not an amount in {currency} with at most {digits} decimals: {text!r}")
    amount = int(match.group(1).replace(",", "")) * 10**digits + int((match.group(2) or "").ljust(digits, "0"))
    if amount > MAX_AMOUNT:
        raise ValueError(f"more than the largest amount ({MAX_AMOUNT} minor units)")
    return amount


def major_text(amount: int, currency: str) -> str:
    """The inverse, for a form's field: `1250050, "CNY"` -> `"12500.50"` (no separators, no code)."""
    digits = MINOR_DIGITS[Currency(currency)]
    major, minor = divmod(int(amount), 10**digits)
    return f"{major}.{minor:0{digits}d}"
