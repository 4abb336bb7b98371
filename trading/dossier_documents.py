"""A dossier's documents: bilingual (Chinese and English) Markdown drafts generated from the contract
for the exporter to complete and file — the particulars of the standard contract (or of the security
assessment's declaration) and the undertaking (承诺书).

They are drafts for the parties' compliance officers, not legal advice and not the official forms.
Every value that is not part of the fixed template goes through exchange.text, as in the contract
document (trading/document.py): a party's name or a product title renders as the characters given,
never as a link, image, HTML, heading or table.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from exchange.errors import NotFound
from exchange.fields import iso_z
from exchange.identity.models import Organization
from exchange.text import escape_markdown as md
from exchange.text import markdown_code as code
from listings import services as listings
from trading.document import DELIVERY, SCOPES
from trading.dossiers import UNDERTAKING, kinds
from trading.models import Contract, Dossier

PATH_NAMES = {
    "no_personal_info": "无个人信息的一般数据 general data without personal information",
    "exempt_small_volume": "豁免（不满10万人非敏感个人信息）exempt: non-sensitive personal information of "
                           "fewer than 100,000 individuals",
    "gba_standard_contract": "粤港澳大湾区个人信息跨境流动标准合同 GBA standard contract for the cross-boundary "
                             "flow of personal information",
    "standard_contract": "个人信息出境标准合同 standard contract for personal information export",
    "security_assessment": "数据出境安全评估 security assessment of outbound data transfer",
}
def _org(org: Organization) -> str:
    place = ", ".join(md(p) for p in (org.region, org.city, org.zone) if p)
    return f"{md(org.name)} (统一社会信用代码/registration no. {md(org.registration_number)}; {place})"


def render(session: Session, dossier: Dossier, kind: str) -> str:
    """One document of the dossier as Markdown. Raises NotFound for a kind the dossier does not offer."""
    offered = dict(kinds(dossier))
    if kind not in offered:
        raise NotFound(f"This dossier has no document {kind!r}; it offers: {', '.join(offered) or 'none'}.")
    contract = session.get(Contract, dossier.contract_id)
    exporter = session.get(Organization, dossier.exporter_org_id)
    importer = session.get(Organization, dossier.importer_org_id)
    revision = listings.get_version(session, product_id=contract.product_id, version=contract.product_version)
    if kind == "particulars":
        return _particulars(offered[kind], dossier, contract, exporter, importer, revision)
    return _undertaking(dossier, contract, exporter, importer, revision)


def _deadline(dossier: Dossier) -> str:
    if dossier.approval_required:
        return ("须在交付前申报并获批准 must be declared and approved before any delivery of the data")
    due = iso_z(dossier.due_at) if dossier.due_at else "-"
    note = ("（按周末推算，节假日安排公布后可能调整 counted over weekends only until the year's holidays are "
            "published）") if dossier.provisional_due_date else ""
    return f"签署后第10个工作日 23:59:59 (UTC+8) 前备案 file by the 10th working day after signature: {due}{note}"


def _particulars(title: str, dossier: Dossier, contract: Contract, exporter: Organization,
                 importer: Organization, revision: object) -> str:
    terms = contract.terms or {}
    personal = "是 yes" if revision.contains_personal_info else "否 no"
    sensitive = "是 yes" if dossier.facts.get("sensitive") else "否 no"
    lines = [
        f"# {title}",
        "",
        "_草稿，供个人信息处理者核对后填报；非官方表格 A draft for the exporter to check and complete; not the "
        "official form._",
        "",
        f"**合同编号 Contract number:** {md(contract.number)}  ",
        f"**签署时间 Signed:** {iso_z(contract.signed_at) if contract.signed_at else '-'}  ",
        f"**路径 Path:** {md(PATH_NAMES.get(dossier.path, dossier.path))}  ",
        f"**规则表版本 Rule table version:** {code(dossier.rule_version)}",
        "",
        "## 一、个人信息处理者（数据出境方）Personal information processor (the exporter)",
        f"- {_org(exporter)}",
        "",
        "## 二、境外接收方 Overseas recipient",
        f"- {_org(importer)}",
        "",
        "## 三、出境数据 The data",
        f"- 产品 Product: {md(revision.title)} ({code(contract.product_id)}, 版本 version {contract.product_version})",
        f"- 类别 Category: {md(revision.category)}; 数据分级 classification: {md(revision.classification)}",
        f"- 含个人信息 Personal information: {personal}; 敏感个人信息 sensitive: {sensitive}",
        f"- 本次涉及个人数量 Individuals in this deal: {int(dossier.subjects):,}",
        f"- 本年累计（含本次）Cumulative this year, this deal included: {int(dossier.cumulative_subjects):,} "
        f"(敏感 sensitive: {int(dossier.cumulative_sensitive_subjects):,})",
        f"- 处理目的与场景 Purposes and scenarios: {'; '.join(md(s) for s in revision.scenarios)}",
        f"- 使用范围 Scope: {md(SCOPES.get(terms.get('scope'), terms.get('scope')))}",
        f"- 传输方式 Transfer: {md(DELIVERY.get(terms.get('delivery_mode'), terms.get('delivery_mode')))}",
        f"- 保存期限 Retention: {md(terms.get('duration_days') or '-')} 天 days",
        "",
        "## 四、判定理由 Why this path",
        *[f"- {md(reason)}" for reason in dossier.reasons],
        "",
        "## 五、备案期限 Filing",
        f"- {_deadline(dossier)}",
        "",
        "## 六、合同摘要 Contract digest",
        f"{code('sha256:' + contract.digest)}",
    ]
    return "\n".join(lines) + "\n"


def _undertaking(dossier: Dossier, contract: Contract, exporter: Organization, importer: Organization,
                 revision: object) -> str:
    lines = [
        f"# {UNDERTAKING}",
        "",
        "_草稿 Draft_",
        "",
        f"本单位 {md(exporter.name)}（统一社会信用代码 {md(exporter.registration_number)}）"
        f"就合同 {md(contract.number)} 项下向境外接收方 {md(importer.name)} "
        f"提供数据产品 {md(revision.title)} 一事，郑重承诺：",
        "",
        "1. 所提交的材料真实、准确、完整，不存在虚假记载或重大遗漏；",
        "2. 已依法开展个人信息保护影响评估，并向个人告知境外接收方的名称、处理目的、处理方式和个人信息种类，"
        "取得法律要求的单独同意；",
        "3. 与境外接收方订立的合同符合所适用的标准合同，不与其相抵触；",
        "4. 不提供重要数据或核心数据，并将配合监管机构的监督检查。",
        "",
        f"We, {md(exporter.name)} (registration no. {md(exporter.registration_number)}), undertake in respect of "
        f"providing the data product {md(revision.title)} to the overseas recipient {md(importer.name)} under "
        f"contract {md(contract.number)} that:",
        "",
        "1. the materials submitted are true, accurate and complete, with no false statement or material omission;",
        "2. we have carried out a personal information protection impact assessment, informed the individuals of "
        "the recipient's name, the purposes, the processing and the kinds of personal information, and obtained "
        "any separate consent the law requires;",
        "3. our contract with the recipient conforms to the applicable standard contract and does not conflict "
        "with it;",
        "4. no important or core data is provided, and we will cooperate with the regulator's supervision.",
        "",
        f"路径 Path: {md(PATH_NAMES.get(dossier.path, dossier.path))}  ",
        f"{_deadline(dossier)}",
        "",
        "盖章 Seal: ____________    日期 Date: ____________",
    ]
    return "\n".join(lines) + "\n"
