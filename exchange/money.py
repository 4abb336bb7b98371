"""Money: integer minor units in the Bay Area's three currencies; the one rounding rule.

No float ever touches an amount. CNY (fen), HKD (cents) and MOP (avos) all have two decimals.
"""

from __future__ import annotations

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
