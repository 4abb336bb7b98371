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


# Words many pages show (labels, statuses, enum values): one text, one translation, for every page.
add({
    "Disputes": "争议",
    "Payouts": "结算出款",
    "Reason": "理由",
    "Verify": "审核通过",
    "Reject": "驳回",
    "Type": "类型",
    "Region": "地区",
    "Registration number": "注册号",
    "Contact email": "联系邮箱",
    "Registered": "注册时间",
    "Product": "产品",
    "Version": "版本",
    "Status": "状态",
    "Trade": "交易",
    "Buyer": "买方",
    "Seller": "卖方",
    "Amount": "金额",
    "Created": "创建时间",
    "Paid": "已付金额",
    "Refunded": "已退款",
    "Opened": "提出时间",
    "Resolve": "裁决",
    "Organization": "机构",
    "Provider": "支付渠道",
    "Stages": "审查环节",
    "Stage": "环节",
    "Assessor": "评估机构",
    "Approvals": "批准数",
    "Operators": "运营方",
    "Decision": "审查意见",
    "Approve": "批准",
    "Request changes": "要求修改",
    "Comment": "备注",
    "Assign": "指派",
    "Documents": "材料",
    "History": "历史记录",
    "Yes": "是",
    "No": "否",
    "Title": "标题",
    "Summary": "摘要",
    "Description": "描述",
    "Keywords": "关键词",
    "Data format": "数据格式",
    "Delivery mode": "交付方式",
    "Classification": "分类分级",
    "Contains personal information": "含个人信息",
    "Personal information": "个人信息",
    "Origin region": "来源地区",
    "Update frequency": "更新频率",
    "Price": "价格",
    "Licence": "许可",
    "Scenarios": "应用场景",
    "Data source": "数据来源",
    "Coverage": "覆盖范围",
    "Size": "数据量",
    "Vendor": "数据商",
    "Certificate": "证书",
    "Entry": "分录",
    "Account": "账户",
    "Problem": "问题",
    "Seq": "序号",
    "Kind": "类型",
    "Time": "时间",
    "Postings": "记账明细",
    "Hash": "哈希",
    "pending": "待处理", "verified": "已审核", "rejected": "已驳回", "suspended": "已暂停",
    "submitted": "已提交", "in_review": "审查中", "public_notice": "公示中", "approved": "已批准",
    "changes_requested": "待修改", "withdrawn": "已撤回", "open": "未解决", "resolved": "已解决",
    "paid": "已支付", "failed": "失败", "succeeded": "成功", "canceled": "已取消",
    "compliance": "合规", "quality": "质量", "ownership": "权属",
    "vendor": "数据商", "enterprise": "企业", "assessor": "评估机构", "operator": "运营方",
    "manual": "银行转账", "stripe": "Stripe",
    "approve": "批准", "reject": "驳回", "request_changes": "要求修改",
    "awaiting_payment": "待付款", "escrowed": "已托管", "delivered": "已交付", "disputed": "争议中",
    "settled": "已结算", "refunded": "已退款", "cancelled": "已取消",
    "payment": "付款", "settlement": "结算", "refund": "退款", "payout": "出款", "reversal": "冲正",
    "one_time": "一次性", "subscription": "订阅", "per_call": "按次",
    "review": "审查", "assigned": "已指派", "review_started": "开始审查", "awaiting_second_approval": "等待第二次批准",
})
