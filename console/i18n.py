"""The console's two languages: English texts are the keys, zh-CN their translations, one table.

Each page module adds its own texts with `add({...})` at import time of the console package (the
console is the top layer: nothing below reads this table). A text without a translation is a test
failure (tests/unit/test_console_i18n.py), not a silent English word on a Chinese page.
"""

from __future__ import annotations

from typing import Any

from flask import g, request

LANGS = ("zh-CN", "en")
DEFAULT = "zh-CN"
COOKIE = "datafair_lang"
ZH: dict[str, str] = {}


def add(table: dict[str, str]) -> None:
    for en, zh in table.items():
        if ZH.get(en, zh) != zh:
            raise ValueError(f"two translations for {en!r}")
        ZH[en] = zh


def choose() -> str:
    """`?lang=` first (and remembered), then the cookie, then Accept-Language, else zh-CN."""
    asked = request.args.get("lang")
    if asked in LANGS:
        g.console_lang_set = asked
        return asked
    kept = request.cookies.get(COOKIE)
    if kept in LANGS:
        return kept
    best = request.accept_languages.best_match(["zh-CN", "zh", "en"])
    if best is None:
        return DEFAULT
    return "en" if best == "en" else "zh-CN"


def lang() -> str:
    if "console_lang" not in g:
        g.console_lang = choose()
    return g.console_lang


def t(text: str, **values: Any) -> str:
    """The text in the page's language, with `{name}` placeholders filled in."""
    if lang() != "en":
        text = ZH.get(text, text)
    return text.format(**values) if values else text


add({
    "datafair": "数据交易所",
    "Data exchange of the Greater Bay Area": "粤港澳大湾区数据交易所",
    "Home": "首页",
    "Catalog": "数据目录",
    "Sign in": "登录",
    "Sign out": "退出登录",
    "Email": "电子邮箱",
    "Password": "密码",
    "Wrong email or password": "电子邮箱或密码错误",
    "Language": "语言",
    "Main navigation": "主导航",
    "Signed in as {user} of {org}": "当前用户：{org} 的 {user}",
    "That was refused.": "操作被拒绝。",
    "Check these fields: {fields}.": "请检查以下字段：{fields}。",
    "Nothing was changed.": "未作任何更改。",
    "Not found": "未找到",
    "This page does not exist or is not visible to you.": "该页面不存在或您无权查看。",
    "The form has expired or was not sent from this site; reload the page and try again.":
        "表单已过期或并非来自本站；请刷新页面后重试。",
    "Bad request": "请求有误",
    "Something went wrong on our side; nothing was changed. Try again in a moment.":
        "服务器出现问题，未作任何更改。请稍后重试。",
    "Please sign in to continue.": "请先登录。",
    "Your session has ended; sign in again.": "会话已结束，请重新登录。",
    "Your organization is suspended: it may read its data but not write.":
        "您的机构已被暂停：只能查看数据，不能修改。",
    "Skip to content": "跳到正文",
    "API documentation": "API 文档",
    "My work": "我的工作",
    "Error": "错误",
    "Done.": "已完成。",
})
add({
    "My products": "我的产品",
    "Procurements": "采购需求",
    "Offers": "报价",
    "Contracts and trades": "合同与交易",
    "Queue": "待办队列",
    "Ledger": "账本",
})
