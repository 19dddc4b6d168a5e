"""The free-text lexicon (kb/text.toml), table-driven: the ICBC messages of failure-codes.md §5.2, the
genuine strings of §5.6-5.9, the gotchas of §7, and paraphrases (traditional, full-width, English)."""

from __future__ import annotations

import pytest

from settleguard.diagnosis import classify, knowledge_base
from settleguard.diagnosis.model import Category, Decision

C = Category
ICBC = [  # §5.2, with the code in front as ICBC sends it
    ("B9999 系统错", C.system_or_network_fault), ("B9997 主机疑账，请调用8624交易进行处理", C.result_unknown),
    ("B0003 交易不可用", C.system_or_network_fault), ("B0004 系统已关闭", C.system_or_network_fault),
    ("B0006 非工作时间", C.system_or_network_fault), ("B0012 公司方暂停受理本业务", C.system_or_network_fault),
    ("B0015 与公司方通信失败", C.system_or_network_fault), ("B0016 与主机通信失败", C.system_or_network_fault),
    ("B0017 与公司方通讯异常产生疑帐，后台自动补做，请稍后查询交易结果!", C.result_unknown),
    ("B0020 与主机通讯异常产生疑帐，后台自动冲正，请稍后查询交易结果!", C.result_unknown),
    ("B0024 该业务已暂停", C.system_or_network_fault), ("B0038 该业务已日终, 请稍后或次日重试", C.system_or_network_fault),
    ("B0039 业务未日初", C.system_or_network_fault), ("B0101 通讯错,联接后台服务器失败", C.system_or_network_fault),
    ("B0102 通讯错,数据接收失败", C.result_unknown), ("B0103 通讯错,数据发送失败", C.system_or_network_fault),
    ("B0106 通讯MAC校验错", C.verification_failed), ("B0124 系统错,签名信息非法", C.verification_failed),
    ("B0140 数据库错", C.system_or_network_fault),
    ("B0201 帐号类型错", C.card_info_error), ("B0202 非法帐号", C.card_info_error),
    ("B0204 帐户非结算帐户", C.card_status_abnormal), ("B0205 帐户状态不正常", C.card_status_abnormal),
    ("B0206 帐户不存在", C.card_info_error), ("B0207 帐户未启用", C.card_status_abnormal),
    ("B0208 帐户已注销", C.card_status_abnormal), ("B0209 帐户已挂失", C.card_status_abnormal),
    ("B0210 帐户已冻结", C.card_status_abnormal), ("B0211 帐户为欠息户", C.card_status_abnormal),
    ("B0213 帐户为止付卡", C.card_status_abnormal), ("B0214 卡过期", C.card_info_error),
    ("B0215 卡已被收回", C.card_status_abnormal), ("B0216 贷记卡不支持透支转帐", C.card_info_error),
    ("B0220 帐户不能通兑", C.card_status_abnormal), ("B0221 该卡为被伪冒卡", C.card_status_abnormal),
    ("B0223 账户为非实名户", C.risk_or_compliance_block), ("B2013 卡号错误或卡类型不符", C.card_info_error),
    ("B2030 账号不正确", C.card_info_error), ("B2031 证件号不正确", C.card_info_error),
    ("B2043 核对户名不相符", C.card_info_error), ("B2446 收款人帐号非法", C.card_info_error),
    ("B2447 收款人帐号暂时不支持对公户", C.card_info_error), ("B2461 收款人1户名不一致", C.card_info_error),
    ("B2467 汇款人户名不符", C.card_info_error), ("B2476 收款人户名不符", C.card_info_error),
    ("B2477 异地借记扣款成功，入账失败", C.result_unknown), ("B2587 账户户名与原委托不符", C.card_info_error),
    ("B2600 证件号码不符", C.card_info_error), ("B2623 卡片有效期不符", C.card_info_error),
    ("B2625 客户户名与已签约户名不符合", C.card_info_error), ("B2626 手机号码与已签约手机号码不符合", C.card_info_error),
    ("B2628 客户未在银行预留手机号", C.card_info_error),
    ("B0280 余额不足", C.insufficient_funds), ("B0281 金额为零", C.transaction_data_error),
    ("B2063 累计扣款超限额", C.limit_exceeded), ("B2116 日累计交易笔数超限", C.limit_exceeded),
    ("B2301 日累计消费超限额", C.limit_exceeded), ("B2421 该用户当日累计金额已经超限", C.limit_exceeded),
    ("B2448 预约汇款金额不能超过5万元", C.limit_exceeded), ("B2616 日累计支付金额超限", C.limit_exceeded),
    ("B2619 支付金额超过最高累计限额", C.limit_exceeded), ("B2622 无验证码消费累计金额已超限", C.limit_exceeded),
    ("B2636 超单笔交易限额", C.limit_exceeded), ("B2637 月累计交易笔数超限", C.limit_exceeded),
    ("B2650 最高累计支付笔数超限", C.limit_exceeded),
    ("B2632 该客户是我行黑名单客户,拒绝交易", C.risk_or_compliance_block),
    ("B2633 该商户是我行黑名单商户,拒绝交易", C.risk_or_compliance_block),
    ("B1012 本行客户，主机客户号核对不通过", C.card_info_error),
    ("B2401 重复的流水号", C.duplicate), ("B2404 交易已存在", C.duplicate),
    ("B2612 已存在不同金额的同一订单号", C.duplicate), ("B2613 该订单已支付成功", C.duplicate),
    ("B2657 该订单号已存在", C.duplicate), ("B0033 原交易已成功", C.duplicate),
    ("B2101 密码不符", C.verification_failed), ("B2610 手机号/验证码核对次数超过上限", C.verification_failed),
    ("B2611 验证码已失效", C.verification_failed), ("B2621 验证码核对不通过", C.verification_failed),
    ("B2640 短信回复超时", C.result_unknown),
]
GENUINE = [  # §5.6 Lianlian-style, §5.7 Baofoo, §5.8 upay, §5.9 other
    ("支付授权令牌失效或错误", C.verification_failed), ("商户请求签名错误", C.verification_failed),
    ("支付服务超时，请重新支付", C.result_unknown), ("正在支付中,请稍后", C.result_unknown),
    ("商户请求参数校验错误", C.transaction_data_error), ("卡号在黑名单中", C.risk_or_compliance_block),
    ("允许的输入PIN次数超限", C.verification_failed), ("您输入的证件号、姓名或手机号有误", C.card_info_error),
    ("卡号和证件号不符", C.card_info_error), ("卡状态异常", C.card_status_abnormal),
    ("证件号有误", C.card_info_error), ("持卡人姓名有误", C.card_info_error), ("手机号有误", C.card_info_error),
    ("该卡未预留手机号", C.card_info_error), ("原交易已在进行处理，请勿重复提交", C.result_unknown),
    ("交易处理中", C.result_unknown), ("无效的银行卡信息", C.card_info_error), ("卡bin校验失败", C.card_info_error),
    ("信用卡不支持提现", C.card_info_error), ("卡余额不足", C.insufficient_funds),
    ("银行维护中，请稍后再试", C.system_or_network_fault), ("银行编码与卡不一致", C.card_info_error),
    ("风险等级过高", C.risk_or_compliance_block), ("金额超过指定额度", C.limit_exceeded),
    ("银行系统日切处理中", C.system_or_network_fault), ("银行交易出错，请稍后重试", C.system_or_network_fault),
    ("系统错误", C.system_or_network_fault),
    ("系统未开放或暂时关闭，请稍后再试", C.system_or_network_fault), ("交易通讯超时，请发起查询交易", C.result_unknown),
    ("交易已受理，请稍后查询交易", C.result_unknown), ("交易状态未明，请查询对账结果", C.result_unknown),
    ("报文格式错误", C.transaction_data_error), ("验证签名失败", C.verification_failed),
    ("报文交易要素缺失", C.transaction_data_error), ("重复交易", C.duplicate), ("订单重复提交", C.duplicate),
    ("支付超时", C.result_unknown), ("存在钓鱼风险，交易中止", C.risk_or_compliance_block),
    ("系统繁忙，请稍后再试", C.system_or_network_fault), ("该交易有风险,请联系宝付", C.risk_or_compliance_block),
    ("交易结果未知，请稍后查询", C.result_unknown), ("超出限额", C.limit_exceeded), ("被风控拦截", C.risk_or_compliance_block),
    ("银行卡卡号不存在", C.card_info_error), ("银行账户中的余额不足以完成支付", C.insufficient_funds),
    ("账户已冻结", C.card_status_abnormal), ("账户挂失", C.card_status_abnormal), ("账户已销户", C.card_status_abnormal),
    ("银行卡状态不正确(止付，其他异常状态)", C.card_status_abnormal), ("超过单笔支付限额", C.limit_exceeded),
    ("超过累计支付限额", C.limit_exceeded), ("通道系统级错误", C.system_or_network_fault),
    ("当前时段不支持该业务", C.system_or_network_fault), ("商户日累计限额超限", C.limit_exceeded),
    ("账号户名不符", C.card_info_error), ("账户状态不正常", C.card_status_abnormal),
    ("入账账号状态不正常", C.card_status_abnormal), ("收款人户名不符,挂账!", C.card_info_error),
    ("账户已冻结或无此账户", C.card_status_abnormal), ("此户已结清", C.card_status_abnormal),
    ("通讯超时", C.result_unknown), ("系统故障", C.system_or_network_fault), ("密钥更新失败", C.verification_failed),
    ("交易结果未知", C.result_unknown), ("处理异常或超时，请稍后再试", C.result_unknown),
    ("结算信息录入错误", C.card_info_error), ("商户身份证和银行卡必须是同一人", C.card_info_error),
    ("结算卡被冻结", C.card_status_abnormal), ("风控冻结资金", C.risk_or_compliance_block),
    ("卡号所属银行与发卡行不一致", C.card_info_error),
]
GOTCHAS = [  # §7
    ("帐户已作废或消户", C.card_status_abnormal), ("卡号校验位校验不正确", C.card_info_error),
    ("发卡方状态不正常，请稍后重试", C.system_or_network_fault), ("发卡方未签到", C.system_or_network_fault),
    ("MAC校验错，请重新签到", C.verification_failed), ("PIN格式错，请重新签到", C.verification_failed),
    ("请向网络中心签到", C.verification_failed), ("终端未登记，请联系收单行或银联", C.verification_failed),
    ("有套现嫌疑", C.risk_or_compliance_block), ("交易成功，请向资金转入行确认", C.result_unknown),
    ("有缺陷的成功", C.result_unknown), ("银行退票：收款人户名不符", C.card_info_error),
    ("退票，原因：账户已销户", C.card_status_abnormal),
]
PARAPHRASES = [  # not in the reference file: traditional, full-width, English bank phrasing
    ("收款人戶名與帳號不符", C.card_info_error), ("帳戶已凍結，請聯繫開戶行", C.card_status_abnormal),
    ("ＡＣＣＯＵＮＴ　ＣＬＯＳＥＤ", C.card_status_abnormal), ("賬戶餘額不足", C.insufficient_funds),
    ("系統繁忙，請稍後再試", C.system_or_network_fault), ("超過單筆限額", C.limit_exceeded),
    ("account closed", C.card_status_abnormal), ("The account has been closed by the customer", C.card_status_abnormal),
    ("Invalid account number", C.card_info_error), ("Beneficiary name mismatch", C.card_info_error),
    ("Account name does not match", C.card_info_error), ("Insufficient funds", C.insufficient_funds),
    ("Amount exceeds limit", C.limit_exceeded), ("Daily limit exceeded for this account", C.limit_exceeded),
    ("System busy, please try again later", C.system_or_network_fault), ("Timeout", C.result_unknown),
    ("Duplicate", C.duplicate), ("Card reported lost", C.card_status_abnormal), ("Card expired", C.card_info_error),
    ("Account frozen by court order", C.card_status_abnormal), ("Suspected fraud", C.risk_or_compliance_block),
    ("Beneficiary bank under maintenance", C.system_or_network_fault), ("MAC verification failed", C.verification_failed),
    ("Missing mandatory field", C.transaction_data_error), ("No such account", C.card_info_error),
    ("收款方姓名与账户不一致", C.card_info_error), ("该卡已销户，请更换银行卡", C.card_status_abnormal),
    ("您的账户已被司法冻结", C.card_status_abnormal), ("长期未使用的睡眠户", C.card_status_abnormal),
    ("收款账户为II类户，超出年累计限额", C.limit_exceeded), ("出款账户可用余额不足", C.insufficient_funds),
    ("收款行系统升级中", C.system_or_network_fault), ("报文金额字段格式错误", C.transaction_data_error),
    ("收款人未完成实名认证", C.risk_or_compliance_block), ("命中反洗钱名单", C.risk_or_compliance_block),
    ("终端密钥不同步，请重新签到", C.verification_failed), ("开户行联行号错误", C.card_info_error),
    ("Receiving bank account is dormant", C.card_status_abnormal), ("IBAN invalid", C.card_info_error),
    ("联行号不存在", C.card_info_error), ("收款卡为信用卡，不支持代付", C.card_info_error), ("超出当日出款次数", C.limit_exceeded),
    ("card blocked", C.card_status_abnormal), ("收款账户当日入账金额已达上限", C.limit_exceeded),
    ("II类户年累计收款超限", C.limit_exceeded), ("帳號不存在", C.card_info_error), ("戶名錯誤", C.card_info_error),
    ("金額超過限額", C.limit_exceeded), ("交易逾時", C.result_unknown), ("系統維護中", C.system_or_network_fault),
    ("returnCode=FAIL&returnMsg=签名错误", C.verification_failed), ("ERR_CODE=NOTENOUGH", C.insufficient_funds),
    ("账户已销户(AC04)", C.card_status_abnormal), ("[R03] No account/unable to locate", C.card_info_error),
]
UNKNOWN = ["交易失败", "失败", "failed", "Transaction failed", "退票", "银行退票", "FAILED", "", "   ", "交易失败，详情请咨询95516",
           "请持卡人与发卡银行联系", "其他错误", "ERROR", "abc xyz", "转账关闭(超过系统重试期，系统自动关闭)", "T+1遇节假日顺延",
           # words that also occur in failure messages, in text that is not one: not misread
           "connection closed by peer", "今日已完成", "额度调整成功", "单日交易", "已注销登录", "Payment rejected", "交易被拒绝"]


@pytest.mark.parametrize(("message", "category"), ICBC + GENUINE + GOTCHAS + PARAPHRASES)
def test_free_text_is_classified_by_its_meaning(message: str, category: Category) -> None:
    d = classify(None, None, message)
    assert d.category is category, (d.rule, d.explanation.pattern, d.explanation.normalized)
    assert d.needs_review is (d.decision is Decision.review)   # the flag follows the decision
    assert d.confidence >= 0.5


@pytest.mark.parametrize("message", UNKNOWN)
def test_generic_or_unrecognised_text_is_honestly_unknown(message: str) -> None:
    d = classify(None, None, message)
    assert d.category is Category.unknown, (d.rule, d.explanation.pattern)
    assert d.needs_review
    assert d.confidence < 0.5
    # no rule, or a "see the text" status code (e.g. WeChat FAILED) whose text says nothing more
    assert d.rule is None or knowledge_base().rule(d.rule).narrative
