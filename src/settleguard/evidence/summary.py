"""summary.html of an evidence bundle (a case's: :data:`TEMPLATE`; a payout's: :data:`PAYOUT_TEMPLATE`): one
self-contained page (inline CSS, no scripts, no links out), Chinese first, English second, rendered with
Jinja2 (autoescaped). Times are local (Beijing time unless configured) with their offset, to the second."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from jinja2 import Environment

from settleguard.evidence.columns import local_time

_STYLE = """<style>
body { font-family: "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .5em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } .en { color: #555; } .money { text-align: right; } .mono { font-family: monospace; }
</style>"""

_FILES = """<h2>文件 Files</h2>
<p>{{ files_said }}</p>
<p>manifest.json 列出每个文件的 SHA-256 与大小；用 <span class="mono">settleguard evidence verify</span> 校验。
<span class="en">manifest.json lists every file's SHA-256 and size; check it with settleguard evidence verify.</span></p>
<ul>{% for f in files %}<li class="mono">{{ f }}</li>{% endfor %}</ul>
</body>
</html>
"""

TEMPLATE = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>证据包 工单 {{ case.id }} · Evidence bundle, case {{ case.id }}</title>
""" + _STYLE + """
</head>
<body>
<h1>证据包 · 工单 {{ case.id }}：{{ case.title }}<br><span class="en">Evidence bundle · case {{ case.id }}</span></h1>
<table>
<tr><th>商户 Merchant</th><td>{{ merchant.merchant_no }} {{ merchant.registered_name }}</td></tr>
<tr><th>分类 Category</th><td>{{ category_zh }} {{ case.category }}</td></tr>
<tr><th>优先级 Priority</th><td>{{ case.priority }}</td></tr>
<tr><th>状态 Status</th><td>{{ status_zh }} {{ case.status }}</td></tr>
<tr><th>处理人 Assignee</th><td>{{ case.assignee or "-" }}</td></tr>
<tr><th>开单 Opened</th><td>{{ case.created_at|local(tz) }} · {{ case.source }} · {{ case.created_by }}</td></tr>
<tr><th>时限 SLA due</th><td>{{ case.sla_due_at|local(tz) }}</td></tr>
{% if case.resolution %}<tr><th>处理结果 Resolution</th><td>{{ case.resolution }} ({{ case.resolved_at|local(tz) }})</td></tr>{% endif %}
<tr><th>生成时间 Generated</th><td>{{ created_at|local(tz) }} · {{ generator }}</td></tr>
</table>

<h2>出款与诊断 Payouts and diagnoses</h2>
{% for p in payouts %}
<h3>出款 payout {{ p.id }} <span class="mono">{{ p.idempotency_key }}</span></h3>
<table>
<tr><th>金额 Amount</th><td class="money">{{ p.amount_yuan }}</td></tr>
<tr><th>业务日 / 出款日 Cycle / value date</th><td>{{ p.cycle_date }} / {{ p.value_date }}</td></tr>
<tr><th>状态 Status</th><td>{{ p.status }}{% if p.category %} · {{ p.category }}{% endif %}</td></tr>
<tr><th>最近失败应答 Last failure</th><td>{{ p.fail_code or "" }} {{ p.fail_message or "" }}</td></tr>
</table>
{% if p.diagnosis_zh %}
<p><b>诊断</b> {{ p.diagnosis_zh.category }}：{{ p.diagnosis_zh.meaning }}</p>
<ol>{% for g in p.diagnosis_zh.guidance %}<li>{{ g }}</li>{% endfor %}</ol>
<p class="en"><b>Diagnosis</b> {{ p.diagnosis_en.category }}: {{ p.diagnosis_en.meaning }}</p>
<ol class="en">{% for g in p.diagnosis_en.guidance %}<li>{{ g }}</li>{% endfor %}</ol>
{% endif %}
{% else %}<p>无关联出款 No linked payouts.</p>{% endfor %}

<h2>银行应答 Bank answers ({{ attempts|length }} 次尝试 attempts)</h2>
<table>
<tr><th>出款 Payout</th><th>#</th><th>类型 Kind</th><th>请求 Requested</th><th>结果 Outcome</th><th>代码 Code</th><th>信息 Message</th><th>分类 Category</th><th>决定 Decision</th></tr>
{% for a in attempts %}<tr><td>{{ a.payout_id }}</td><td>{{ a.attempt_no }}</td><td>{{ a.kind }}</td><td>{{ a.requested_at|local(tz) }}</td><td>{{ a.outcome or "…" }}</td><td>{{ a.code or "" }}</td><td>{{ a.message or "" }}</td><td>{{ a.category or "" }}</td><td>{{ a.decision or "" }}</td></tr>
{% endfor %}</table>
<p>原始应答见 bank_responses.json；Raw answers are in bank_responses.json.</p>

<h2>联系记录 Contacts</h2>
<table>
<tr><th>时间 When</th><th>对象 Party</th><th>方式 Method</th><th>联系人 Who</th><th>内容 What was said</th><th>记录人 Recorded by</th></tr>
{% for c in contacts %}<tr><td>{{ c.at|local(tz) }}</td><td>{{ c.party_zh }} {{ c.party }}</td><td>{{ c.method_zh }} {{ c.method }}</td><td>{{ c.contact_name or "" }}</td><td>{{ c.summary }}</td><td>{{ c.recorded_by }}</td></tr>
{% else %}<tr><td colspan="6">无 none</td></tr>{% endfor %}</table>

<h2>备注 Notes</h2>
<table>
<tr><th>时间 When</th><th>作者 Author</th><th>内容 Note</th></tr>
{% for n in notes %}<tr><td>{{ n.created_at|local(tz) }}</td><td>{{ n.author }}</td><td>{{ n.body }}</td></tr>
{% else %}<tr><td colspan="3">无 none</td></tr>{% endfor %}</table>

<h2>结算卡 Settlement cards（仅掩码 masked only）</h2>
<table>
<tr><th>ID</th><th>卡号 Card</th><th>银行 Bank</th><th>户名 Holder</th><th>状态 Status</th><th>卡状态 Card status</th><th>绑定 Bound</th><th>替换 Replaced</th></tr>
{% for a in accounts %}<tr><td>{{ a.id }}</td><td class="mono">{{ a.pan_masked }}</td><td>{{ a.bank_name }} {{ a.bank_code }}</td><td>{{ a.holder_name }}</td><td>{{ a.status }}</td><td>{{ a.card_status or "" }}</td><td>{{ a.bound_at|local(tz) }}</td><td>{{ a.replaced_at|local(tz) }}</td></tr>
{% endfor %}</table>

""" + _FILES

PAYOUT_TEMPLATE = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>出款凭证 出款 {{ payout.id }} · Payout evidence, payout {{ payout.id }}</title>
""" + _STYLE + """
</head>
<body>
<h1>出款凭证 · 出款 {{ payout.id }}<br><span class="en">Payout evidence · payout {{ payout.id }}</span></h1>
<table>
<tr><th>商户 Merchant</th><td>{{ merchant.merchant_no }} {{ merchant.registered_name }}</td></tr>
<tr><th>出款 Payout</th><td>{{ payout.id }} <span class="mono">{{ payout.idempotency_key }}</span>{% if payout.parent_id %} · 拆分自出款 part of payout {{ payout.parent_id }}{% endif %}</td></tr>
<tr><th>金额 Amount</th><td class="money">{{ amount_yuan }} {{ payout.currency }}</td></tr>
<tr><th>业务日 / 出款日 Cycle / value date</th><td>{{ payout.cycle_date }} / {{ payout.value_date }}</td></tr>
<tr><th>状态 Status</th><td>{{ status_zh }} {{ payout.status }}</td></tr>
<tr><th>收款卡 Card</th><td class="mono">{% for c in cards %}{{ c.pan_masked }} {{ c.bank_name }}{% if not loop.last %}<br>{% endif %}{% else %}-{% endfor %}</td></tr>
<tr><th>最近银行应答 Latest bank answer</th><td>{% if last_bad %}{{ last_bad.code or "" }} {{ last_bad.message or "" }} ({{ (last_bad.responded_at or last_bad.requested_at)|local(tz) }}){% else %}-{% endif %}</td></tr>
{% if settlement %}<tr><th>结算 Settlement</th><td>{{ settlement.cycle_date }} · {{ settlement.txn_count }} 笔 transactions · 净额 net <span class="money">{{ settlement_net_yuan }}</span></td></tr>{% endif %}
<tr><th>生成时间 Generated</th><td>{{ created_at|local(tz) }} · {{ generator }}</td></tr>
</table>

<h2>诊断与处理指引 Diagnosis and what to do</h2>
{% if diagnosis_zh %}
<p><b>原因</b> {{ category_zh }}：{{ diagnosis_zh.meaning }}</p>
<p>怎么办：</p>
<ol>{% for g in diagnosis_zh.guidance %}<li>{{ g }}</li>{% endfor %}</ol>
<p class="en"><b>Reason</b> {{ diagnosis_en.category }}: {{ diagnosis_en.meaning }}</p>
<p class="en">What to do:</p>
<ol class="en">{% for g in diagnosis_en.guidance %}<li>{{ g }}</li>{% endfor %}</ol>
{% else %}<p>银行没有拒绝过这笔出款。<span class="en">The bank never refused this payout.</span></p>{% endif %}

<h2>时间线 Timeline</h2>
<table>
<tr><th>时间 When</th><th>出款 Payout</th><th>从 From</th><th>到 To</th><th>原因 Reason</th></tr>
{% for e in events %}<tr><td>{{ e.created_at|local(tz) }}</td><td>{{ e.payout_id }}</td><td>{{ e.from_zh }} {{ e.from_status or "" }}</td><td>{{ e.to_zh }} {{ e.to_status }}</td><td>{{ e.reason }}</td></tr>
{% else %}<tr><td colspan="5">无 none</td></tr>{% endfor %}</table>

<h2>银行应答 Bank answers ({{ attempts|length }} 次尝试 attempts)</h2>
<table>
<tr><th>出款 Payout</th><th>#</th><th>类型 Kind</th><th>收款卡 Card</th><th>请求 Requested</th><th>应答 Answered</th><th>结果 Outcome</th><th>代码 Code</th><th>信息 Message</th><th>分类 Category</th></tr>
{% for a in attempts %}<tr><td>{{ a.payout_id }}</td><td>{{ a.attempt_no }}</td><td>{{ a.kind }}</td><td class="mono">{{ a.card or "" }}</td><td>{{ a.requested_at|local(tz) }}</td><td>{{ a.responded_at|local(tz) }}</td><td>{{ a.outcome or "…" }}</td><td>{{ a.code or "" }}</td><td>{{ a.message or "" }}</td><td>{{ a.category or "" }}</td></tr>
{% else %}<tr><td colspan="10">尚未发送 not sent yet</td></tr>{% endfor %}</table>
<p>原始应答与诊断见 attempts.json；Raw answers and diagnoses are in attempts.json.</p>

{% if parts %}
<h2>拆分 Parts</h2>
<table>
<tr><th>出款 Payout</th><th>金额 Amount</th><th>状态 Status</th><th>编号 Key</th></tr>
{% for p in parts %}<tr><td>{{ p.id }}</td><td class="money">{{ p.amount_yuan }}</td><td>{{ p.status_zh }} {{ p.status }}</td><td class="mono">{{ p.idempotency_key }}</td></tr>
{% endfor %}</table>
{% endif %}

<h2>通知 Notices</h2>
<table>
<tr><th>通知 Notice</th><th>类型 Kind</th><th>生成 Written</th><th>送达 Delivered</th></tr>
{% for n in notices %}<tr><td>{{ n.id }}</td><td>{{ n.kind }}</td><td>{{ n.created_at|local(tz) }}</td><td>{{ n.delivered_at|local(tz) }}</td></tr>
{% else %}<tr><td colspan="4">无 none</td></tr>{% endfor %}</table>
<table>
<tr><th>通知 Notice</th><th>渠道 Channel</th><th>发送至 To</th><th>第几次 Try</th><th>时间 When</th><th>结果 Result</th></tr>
{% for n in log %}<tr><td>{{ n.notification_id }}</td><td>{{ n.channel }}</td><td class="mono">{{ n.target }}</td><td>{{ n.attempt_no or "" }}</td><td>{{ n.started_at|local(tz) }}</td><td>{% if n.ok %}成功 delivered{% elif n.ok is none %}{{ n.delivery_status }}{% else %}失败 failed {{ n.http_status or "" }}{% endif %}</td></tr>
{% else %}<tr><td colspan="6">未发送（没有设置通知渠道）none sent (no notice channel set)</td></tr>{% endfor %}</table>
<p>通知全文见 notices.json，发送记录见 notices.csv；The notices' text is in notices.json, every try in notices.csv.</p>

""" + _FILES

def _local(v: datetime | str | None, tz: tzinfo) -> str:
    """A stored instant as people read it: local time with its offset, to the second ("" for none)."""
    return "" if v is None or v == "" else local_time(v, tz)


_ENV = Environment(autoescape=True, keep_trailing_newline=True)
_ENV.filters["local"] = _local


def render(context: dict[str, Any]) -> str:
    """The case's page; ``context["tz"]`` (a tzinfo: the configured business zone) is the zone its times are
    shown in."""
    return _ENV.from_string(TEMPLATE).render(**context)


def render_payout(context: dict[str, Any]) -> str:
    """The payout's page; ``context["tz"]`` as for :func:`render`."""
    return _ENV.from_string(PAYOUT_TEMPLATE).render(**context)
