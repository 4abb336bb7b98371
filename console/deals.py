"""Contract and trade pages of the two parties: the contract document and its signatures, the trade's
timeline, paying by bank transfer, accepting or disputing a delivery, and the delivered files.

Each button calls the service the API's route calls (trading.contracts.sign, trading.payments,
trading.settlement); a file is handed out exactly as the API does it: delivery.downloads issues the
signed link (the entitlement checked and the access logged at that moment) and the browser follows
it to the API's download route, which checks and logs again.
"""

from __future__ import annotations

import html
from typing import Any

from flask import redirect, request

from console import i18n, web
from console.buyer import PER_PAGE, _page_count, _page_number, word
from console.web import bp
from delivery import downloads, entitlements, releases
from delivery.models import Release, ReleaseFile
from exchange.api import paginate
from exchange.db import db
from exchange.errors import DomainError, NotFound
from exchange.identity.models import User
from listings.models import Fair
from trading import contracts, document, payments, queues, settlement, trades
from trading.models import Dispute, Trade
from trading.schemas import ContractSchema, DisputeCreateSchema, DisputeSchema, TradeSchema

i18n.add({
    "Contracts": "合同",
    "Trades": "交易",
    "Trade": "交易",
    "File": "文件",
    "No contract yet.": "暂无合同。",
    "No trade yet.": "暂无交易。",
    "Number": "编号",
    "Counterparty": "交易对方",
    "Created": "创建时间",
    "Contract {number}": "合同 {number}",
    "Trade {id}": "交易 {id}",
    "The contract document": "合同文本",
    "Digest": "摘要",
    "Signatures": "签名",
    "No signature yet.": "尚无签名。",
    "Organization": "机构",
    "Signed by": "签署人",
    "Signed at": "签署时间",
    "Where": "签署地点",
    "On site at stall {stall} of {fair}": "于“{fair}”{stall} 号展位现场签署",
    "Online": "线上",
    "Method": "签名方式",
    "Sign contract": "签署合同",
    "Contract signed.": "合同已签署。",
    "Go to the trade": "查看交易",
    "Buyer": "买方",
    "Seller": "卖方",
    "Timeline": "时间线",
    "Trade created, awaiting payment": "交易已创建，等待付款",
    "Payment {provider} started ({status})": "已发起付款：{provider}（{status}）",
    "Payment confirmed: in escrow": "付款已确认：资金已托管",
    "Acceptance period started": "验收期开始",
    "Dispute opened": "已提出争议",
    "Dispute resolved": "争议已解决",
    "Paid": "已付金额",
    "Fee": "手续费",
    "Contract": "合同",
    "Pay by bank transfer": "银行转账付款",
    "A bank transfer payment was recorded: an operator confirms it when the money arrives.":
        "已登记银行转账付款：款项到账后由运营人员确认。",
    "Accept delivery": "确认验收",
    "Delivery accepted: the trade is settled.": "已确认验收：交易已结算。",
    "Open a dispute": "提出争议",
    "Reason": "理由",
    "Dispute opened: an operator will resolve it.": "争议已提出：运营人员将进行处理。",
    "Files": "文件",
    "Download {name}": "下载 {name}",
    "Size (bytes)": "大小（字节）",
    "Payments": "付款",
    "Provider": "支付渠道",
})


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else ""


# -- lists -----------------------------------------------------------------------------------------
@bp.route("/console/trades", methods=["GET"], endpoint="trades")
def trades_page() -> Any:
    p = web.require_principal()
    number = _page_number()
    contract_page = paginate(db.session, contracts.list_query(principal=p, status=None), page=number,
                             per_page=PER_PAGE)
    trade_page = paginate(db.session, trades.list_query(principal=p, status=None), page=number, per_page=PER_PAGE)
    shown = contracts.shown_page(db.session, contract_page["items"])
    rows = [*shown, *trade_page["items"]]
    names = web.org_names(org for row in rows for org in (row.buyer_org_id, row.seller_org_id))

    def counterparty(row: Any) -> str:
        return names.get(row.seller_org_id if p.org_id == row.buyer_org_id else row.buyer_org_id, "")

    shown_contracts = [{**ContractSchema().dump(c), "counterparty": counterparty(c)} for c in shown]
    shown_trades = [{**TradeSchema().dump(t), "counterparty": counterparty(t)} for t in trade_page["items"]]
    page = {**trade_page, "total": max(trade_page["total"], contract_page["total"])}
    return web.render("console/buyer/trades.html", contracts=shown_contracts, trades=shown_trades, page=page,
                      pages=_page_count(page))


# -- a contract ------------------------------------------------------------------------------------
def _contract_context(contract_id: str) -> dict[str, Any]:
    p = web.require_principal()
    contract = contracts.get(db.session, contract_id=contract_id, principal=p)
    shown = contracts.shown(db.session, contract)
    signatures = []
    for sig in shown.signatures:
        user = db.session.get(User, sig.user_id)
        fair = db.session.get(Fair, sig.fair_id) if sig.fair_id else None
        signatures.append({"org": web.org_name(sig.org_id), "user": (user.name or user.email) if user else "",
                           "signed_at": _when(sig.signed_at), "on_site": sig.on_site, "stall": sig.stall_code,
                           "fair": fair.name if fair else "", "method": sig.method})
    signed_orgs = {s.org_id for s in shown.signatures}
    may_sign = (contract.status == "pending_signatures" and p.org_id in (contract.buyer_org_id, contract.seller_org_id)
                and p.org_id not in signed_orgs)
    # The API's Markdown document; its HTML entities (how Markdown keeps `<` literal) become characters
    # again here, and the template escapes the whole text for HTML.
    return {"contract": ContractSchema().dump(shown), "document": html.unescape(document.render(db.session, contract)),
            "signatures": signatures, "may_sign": may_sign, "buyer": web.org_name(contract.buyer_org_id),
            "seller": web.org_name(contract.seller_org_id)}


@bp.route("/console/contracts/<contract_id>", methods=["GET"], endpoint="contract_page")
def contract_page(contract_id: str) -> Any:
    return web.render("console/buyer/contract.html", **_contract_context(contract_id))


@bp.route("/console/contracts/<contract_id>/sign", methods=["POST"], endpoint="sign_contract")
def sign_contract(contract_id: str) -> Any:
    p = web.require_principal()
    try:
        # No key and no signature: the exchange attests the signature (`platform`), as the API does.
        contracts.sign(db.session, contract_id=contract_id, data={}, actor=p, client_addr=request.remote_addr,
                       user_agent=request.headers.get("User-Agent"))
    except DomainError as error:
        if error.status == 404:
            raise
        db.session.rollback()
        return web.refused(error, "console/buyer/contract.html", **_contract_context(contract_id))
    return web.see_other("console.contract_page", flash=i18n.t("Contract signed."), contract_id=contract_id)


# -- a trade ---------------------------------------------------------------------------------------
def _timeline(trade: dict[str, Any], disputes: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The trade's dated steps as the API shows them (its timestamps, its payments, its disputes)."""
    steps: list[tuple[str, str]] = [(trade["created_at"], i18n.t("Trade created, awaiting payment"))]
    for pay in trade["payments"]:
        steps.append((pay["created_at"], i18n.t("Payment {provider} started ({status})",
                                                provider=word(pay["provider"]), status=word(pay["status"]))))
        if pay["confirmed_at"]:
            steps.append((pay["confirmed_at"], i18n.t("Payment confirmed: in escrow")))
    if trade["delivered_at"]:
        steps.append((trade["delivered_at"], i18n.t("Delivered")))
    if trade["acceptance_started_at"] and trade["acceptance_started_at"] != trade["delivered_at"]:
        steps.append((trade["acceptance_started_at"], i18n.t("Acceptance period started")))
    for d in disputes:
        steps.append((d["created_at"], i18n.t("Dispute opened")))
        if d["resolved_at"]:
            steps.append((d["resolved_at"], i18n.t("Dispute resolved")))
    if trade["settled_at"]:
        steps.append((trade["settled_at"], i18n.t("Settled")))
    if trade["cancelled_at"]:
        steps.append((trade["cancelled_at"], i18n.t("Cancelled")))
    return sorted(steps, key=lambda s: s[0] or "")


def _files(trade: Trade, p: Any) -> list[dict[str, Any]]:
    """The files of the release that delivered a file product's trade, as its buyer may see them."""
    if trade.delivery_evidence != "release" or not trade.delivery_reference:
        return []
    try:
        release = releases.get(db.session, release_id=trade.delivery_reference, principal=p)
    except NotFound:
        return []
    return [{"id": f.id, "name": f.name, "sha256": f.sha256, "bytes": f.bytes}
            for f in releases.files_of(db.session, release.id)]


def _trade_context(trade_id: str) -> dict[str, Any]:
    p = web.require_principal()
    trade = trades.visible(db.session, trade_id, p)
    shown = TradeSchema().dump(trade)
    disputes = [DisputeSchema().dump(d) for d in db.session.execute(
        queues.disputes(principal=p).where(Dispute.trade_id == trade.id)).scalars()]
    is_buyer = p.org_id == trade.buyer_org_id
    return {"trade": shown, "timeline": _timeline(shown, disputes), "disputes": disputes, "is_buyer": is_buyer,
            "buyer": web.org_name(trade.buyer_org_id), "seller": web.org_name(trade.seller_org_id),
            "contract_number": contracts.get(db.session, contract_id=trade.contract_id, principal=p).number,
            "files": _files(trade, p)}


@bp.route("/console/trades/<trade_id>", methods=["GET"], endpoint="trade_page")
def trade_page(trade_id: str) -> Any:
    return web.render("console/buyer/trade.html", **_trade_context(trade_id))


def _trade_step(trade_id: str, step: Any, done: str) -> Any:
    """Run one service step on the trade: 303 back with `done`, or the page with the refusal (rolled back)."""
    p = web.require_principal()
    try:
        step(p)
    except DomainError as error:
        if error.status == 404:
            raise
        db.session.rollback()
        return web.refused(error, "console/buyer/trade.html", **_trade_context(trade_id))
    return web.see_other("console.trade_page", flash=done, trade_id=trade_id)


@bp.route("/console/trades/<trade_id>/pay", methods=["POST"], endpoint="pay_trade")
def pay_trade(trade_id: str) -> Any:
    return _trade_step(trade_id, lambda p: payments.create_payment(db.session, trade_id=trade_id, provider="manual",
                                                                    actor=p),
                       i18n.t("A bank transfer payment was recorded: an operator confirms it when the money arrives."))


@bp.route("/console/trades/<trade_id>/accept", methods=["POST"], endpoint="accept_delivery")
def accept_delivery(trade_id: str) -> Any:
    return _trade_step(trade_id, lambda p: settlement.accept(db.session, trade_id=trade_id, actor=p),
                       i18n.t("Delivery accepted: the trade is settled."))


@bp.route("/console/trades/<trade_id>/dispute", methods=["POST"], endpoint="open_dispute")
def open_dispute(trade_id: str) -> Any:
    def step(p: Any) -> None:
        loaded = web.load(DisputeCreateSchema(), {"reason": request.form.get("reason", "")})
        settlement.open_dispute(db.session, trade_id=trade_id, reason=loaded["reason"], actor=p)

    return _trade_step(trade_id, step, i18n.t("Dispute opened: an operator will resolve it."))


@bp.route("/console/trades/<trade_id>/files/<int:file_id>", methods=["GET"], endpoint="trade_file")
def trade_file(trade_id: str, file_id: int) -> Any:
    """A delivered file: the signed link delivery issues for the trade's entitlement (checked and
    logged now), followed by the browser to the API's download route (checked and logged again)."""
    p = web.require_principal()
    trade = trades.visible(db.session, trade_id, p)
    ent = db.session.execute(entitlements.list_query(principal=p, status=None, product_id=None, trade_id=trade.id,
                                                     contract_id=None)).scalars().first()
    row = db.session.get(ReleaseFile, file_id)
    if ent is None or row is None or db.session.get(Release, row.release_id).product_id != trade.product_id:
        raise NotFound("No such file.")
    link = downloads.issue_link(db.session, entitlement_id=ent.id, release_id=row.release_id, file=row.name,
                                actor=p, base_url=request.host_url)
    return redirect(link["url"], code=303)
