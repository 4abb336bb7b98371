"""Public pages of the console that need no product or trade: the home page (the live fair and the
market), sign-in and sign-out."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import redirect, request, url_for

from console import charts, i18n, web
from console.web import bp
from exchange.db import db
from exchange.errors import DomainError, Unauthorized
from listings import fairs
from listings.models import Fair
from listings.states import FairPhase
from trading import stats

i18n.add({
    "The fair": "数据交易会",
    "No fair is live right now.": "目前没有正在进行的交易会。",
    "Venue": "地点",
    "Dates": "日期",
    "Stalls": "展位",
    "Products on show": "参展产品",
    "Contracts signed on site": "现场签约合同",
    "Volume by currency": "各币种成交额",
    "No trade has been paid yet.": "尚无已支付的交易。",
    "Search the catalog": "搜索数据目录",
    "Search": "搜索",
    "Market statistics": "市场统计",
    "Products listed": "已挂牌产品",
    "Vendors": "数据商",
    "Contracts signed": "已签合同",
    "Contracts signed per day": "每日签约合同数",
    "Last 14 days": "最近 14 天",
    "Stalls and QR codes": "展位与二维码",
    "live": "进行中",
    "upcoming": "即将开始",
    "ended": "已结束",
    "Upcoming fairs": "即将举行的交易会",
    "Volume": "成交额",
    "By category": "按类别",
    "Category": "类别",
    "Products": "产品",
    "Contracts": "合同",
    "Signed out.": "已退出登录。",
    "Welcome, {name}.": "欢迎，{name}。",
})


def _live_fair() -> Fair | None:
    return db.session.execute(fairs.list_fairs(phase=FairPhase.LIVE).limit(1)).scalars().first()


def home() -> Any:
    """`/` for browsers (and `/home`): the live fair, the catalog search and the market's figures."""
    session = db.session
    fair = _live_fair()
    fair_facts = fairs.shown(session, fair) if fair is not None else None
    upcoming = session.execute(fairs.list_fairs(phase=FairPhase.UPCOMING).limit(3)).scalars().all()
    market = stats.market(session)
    per_day = stats.signed_per_day(session, days=14)
    volume = fair_facts.stats["volume"] if fair_facts is not None else []
    volume_bars = charts.bars([(v["currency"], int(v["amount"]), web.money(v["amount"], v["currency"]))
                               for v in volume])
    market_bars = charts.bars([(v["currency"], int(v["amount"]), web.money(v["amount"], v["currency"]))
                               for v in market["volume"]])
    day_columns = charts.columns([(d["day"][5:], d["count"]) for d in per_day])
    return web.render("console/home.html", fair=fair, fair_facts=fair_facts, upcoming=upcoming, market=market,
                      volume_bars=volume_bars, market_bars=market_bars, day_columns=day_columns)


bp.add_url_rule("/home", "home", home, methods=["GET"])


def _safe_next(target: str | None) -> str:
    """Only a path on this site (never `//host` or a scheme): an open redirect is a phishing tool."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("console.home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return url_for("console.home")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        return web.render("console/login.html", next=request.args.get("next", ""))
    email = web.form_value("email")
    try:
        web.sign_in(email, request.form.get("password") or "")
    except Unauthorized:
        # The same sentence for an unknown email and a wrong password (as the API's 401).
        return web.render("console/login.html", 401, error=i18n.t("Wrong email or password"),
                          form={"email": email}, next=request.form.get("next", ""))
    except DomainError as error:
        return web.refused(error, "console/login.html", next=request.form.get("next", ""))
    return redirect(_safe_next(request.form.get("next")), code=303)


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    web.sign_out()
    return web.see_other("console.home", flash=i18n.t("Signed out."))
