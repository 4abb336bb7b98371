"""The contract as a human-readable bilingual (Chinese and English) Markdown document.

Every value that is not part of the fixed template goes through exchange.text (`md` for text,
`code` for identifiers): a party's name, a product title or a scenario renders as the characters
given, never as a link, image, HTML, heading or table, and bidi controls are shown as <U+202E>.
The document is a rendering only: the contract digest is over the frozen terms (trading.contracts),
never over this text.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from exchange.fields import iso_z
from exchange.identity.models import Organization
from exchange.money import format_amount
from exchange.text import escape_markdown as md
from exchange.text import markdown_code as code
from listings import services as listings
from trading import contracts
from trading.models import Contract

_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_SMALL_UNITS = ("", "拾", "佰", "仟")
_BIG_UNITS = ("", "万", "亿", "万亿")
CURRENCY_NAMES = {"CNY": ("人民币", "Chinese yuan", "元", "fen"), "HKD": ("港币", "Hong Kong dollars", "元", "cents"),
                  "MOP": ("澳门元", "Macao patacas", "元", "avos")}
_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
         "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
SCOPES = {"internal_use": "内部使用 internal use", "commercial": "商业使用 commercial use",
          "research": "科研使用 research use"}
DELIVERY = {"file": "文件交付 file delivery", "api": "接口交付 API access",
            "privacy_computing": "隐私计算 privacy-preserving computation"}


def _chinese_section(n: int) -> str:
    """0 < n < 10000 in financial numerals, e.g. 1205 -> 壹仟贰佰零伍."""
    out, zero = "", False
    for pos in range(3, -1, -1):
        d = n // 10**pos % 10
        if d == 0:
            zero = bool(out)
            continue
        if zero:
            out += "零"
            zero = False
        out += _DIGITS[d] + _SMALL_UNITS[pos]
    return out


def chinese_amount(minor: int, currency: str) -> str:
    """Capital (大写) amount as on Chinese contracts: 12500.50 CNY -> 人民币壹万贰仟伍佰元伍角."""
    name = CURRENCY_NAMES[currency][0]
    major, cents = divmod(minor, 100)
    parts: list[str] = []
    big, lower = 0, None  # `lower`: the value of the section just below the one being written
    while major > 0:
        section = major % 10000
        if section:
            text = _chinese_section(section) + _BIG_UNITS[big]
            if lower is not None and lower < 1000:
                text += "零"
            parts.append(text)
        lower = section if section else (0 if parts else None)
        major //= 10000
        big += 1
    jiao, fen = divmod(cents, 10)
    words = "".join(reversed(parts)).rstrip("零")
    if words:
        words += "元"
        if cents == 0:
            return f"{name}{words}整"
        if not jiao:
            words += "零"
    elif cents == 0:
        return f"{name}零元整"
    if jiao:
        words += _DIGITS[jiao] + "角"
    if fen:
        words += _DIGITS[fen] + "分"
    return f"{name}{words}"


def _english_below_thousand(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    out = []
    if hundreds:
        out.append(f"{_ONES[hundreds]} hundred")
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        out.append(_TENS[tens] + (f"-{_ONES[ones]}" if ones else ""))
    elif rest or not out:
        out.append(_ONES[rest])
    return " ".join(out)


def english_amount(minor: int, currency: str) -> str:
    major, cents = divmod(minor, 100)
    words, rest = [], major
    for size, name in _SCALES:
        if rest >= size:
            words.append(f"{_english_below_thousand(rest // size)} {name}")
            rest %= size
    if rest or not words:
        words.append(_english_below_thousand(rest))
    unit = CURRENCY_NAMES[currency][1]
    text = " ".join(words) + f" {unit}"
    if cents:
        text += f" and {_english_below_thousand(cents)} {CURRENCY_NAMES[currency][3]}"
    return text[0].upper() + text[1:]


def _party(org: Organization) -> str:
    return (f"{md(org.name)} (统一社会信用代码/registration no. {md(org.registration_number)}; "
            f"region {md(org.region)})")


def render(session: Session, contract: Contract) -> str:
    """The contract document: parties, product, certificate, price in words and figures, licence,
    duration, delivery, governing rules, digest and the signature block."""
    buyer = session.get(Organization, contract.buyer_org_id)
    seller = session.get(Organization, contract.seller_org_id)
    revision = listings.get_version(session, product_id=contract.product_id, version=contract.product_version)
    terms: dict[str, Any] = contract.terms
    sigs = contracts.signatures(session, contract)
    lines = [
        "# 数据产品交易合同 / Data Product Transaction Contract",
        "",
        f"**合同编号 Contract number:** {md(contract.number)}  ",
        f"**状态 Status:** {md(contract.status)}  ",
        f"**订立时间 Created:** {iso_z(contract.created_at)}",
        "",
        "## 一、合同双方 Parties",
        f"- 买方 Buyer: {_party(buyer)}",
        f"- 卖方 Seller: {_party(seller)}",
        "",
        "## 二、交易标的 Data product",
        f"- 产品 Product: {md(revision.title)} ({code(contract.product_id)}, 版本 version {contract.product_version})",
        f"- 类别 Category: {md(revision.category)}; 数据分级 classification: {md(revision.classification)}; "
        f"含个人信息 personal information: {'是 yes' if revision.contains_personal_info else '否 no'}",
        f"- 数据来源地 Origin region: {md(revision.origin_region)}; "
        f"更新频率 update frequency: {md(revision.update_frequency)}",
        f"- 登记应用场景 Registered scenarios: {'; '.join(md(s) for s in revision.scenarios)}",
        f"- 认证证书 Certificate: {md(contract.certificate_number)} (可在 verifiable at "
        f"{code('/api/v1/certificates/' + contract.certificate_number)})",
        "",
        "## 三、价款 Price",
        f"- 金额 Amount: {format_amount(contract.amount, contract.currency)}",
        f"- 大写 In words: {chinese_amount(contract.amount, contract.currency)}",
        f"- In words: {english_amount(contract.amount, contract.currency)}",
        "- 交易所服务费由卖方承担，从结算款中扣除 The exchange fee is borne by the seller and deducted at settlement.",
        "",
        "## 四、授权与交付 Licence and delivery",
        f"- 使用范围 Scope: {md(SCOPES.get(terms.get('scope'), terms.get('scope')))}",
        f"- 授权期限 Duration: {md(terms.get('duration_days'))} 天 days",
        f"- 交付方式 Delivery: {md(DELIVERY.get(terms.get('delivery_mode'), terms.get('delivery_mode')))}",
        "- 价款由交易所托管，买方确认交付后结算 Payment is held in escrow by the exchange and settled to the seller "
        "after the buyer accepts delivery (or automatically after the acceptance period).",
        "",
        "## 五、适用规则 Governing rules",
        "- 本合同适用中华人民共和国法律及交易所交易规则；跨境数据传输须符合粤港澳大湾区数据跨境规则及交易所白名单。",
        "- This contract is governed by the laws of the People's Republic of China and the exchange's trading rules; "
        "any cross-border transfer of data must comply with the Greater Bay Area cross-border data rules and the "
        "exchange's white list.",
        "",
        "## 六、合同摘要 Digest",
        f"{code('sha256:' + contract.digest)} — RFC 8785 canonical JSON of number, buyer_org_id, seller_org_id, "
        "product_id, product_version, certificate_number, price, terms.",
        "",
        "## 七、签署 Signatures",
    ]
    if not sigs:
        lines.append("_尚未签署 Not yet signed._")
    for s in sigs:
        who = buyer if s.org_id == buyer.id else seller
        place = f"现场 on site at fair {md(s.fair_id)}, stall {md(s.stall_code)}" if s.on_site else "远程 remote"
        lines.append(f"- {md(who.name)}: user {code(s.user_id)}, {iso_z(s.signed_at)}, {place}, "
                     f"method {md(s.method)}, key {code(s.key_id)}, signature {code(s.signature)}")
    return "\n".join(lines) + "\n"
