"""Merchant files for the onboarding tests: valid rows built from the generator's numbers, and writers."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from stdnum.cn import uscc as _uscc

from settleguard.cards.bins import load_packaged_bins
from settleguard.cards.model import luhn_complete
from settleguard.sim.generator import resident_id_check_digit

HEADER_ZH = ["商户编号", "商户名称", "商户类型", "法人姓名", "法人身份证号", "统一社会信用代码", "MCC", "城市", "联系手机",
             "结算周期", "借记卡费率", "借记卡封顶", "信用卡费率", "扫码费率", "费率生效日期", "结算户名", "结算人身份证号",
             "结算卡号", "开户银行", "终端序列号", "终端号", "终端型号"]
HEADER_EN = ["merchant_no", "registered_name", "kind", "legal_person", "legal_person_id", "uscc", "mcc", "city",
             "contact_mobile", "cycle", "debit_rate", "debit_cap", "credit_rate", "qr_rate", "fee_effective_from",
             "holder_name", "holder_id", "card_no", "bank", "terminal_sn", "terminal_no", "terminal_model"]


_CN = "零一二三四五六七八九"


def resident_id(i: int, born: str = "19850314") -> str:
    first17 = f"110105{born}{i % 1000:03d}"
    return first17 + resident_id_check_digit(first17)


def uscc(i: int, kind: str = "1") -> str:
    first17 = f"9{kind}110105{i:08d}X"[:17]
    return first17 + _uscc.calc_check_digit(first17 + "0")


def debit_card(i: int, bank: str = "ICBC") -> str:
    info = load_packaged_bins().debit_bins(bank)[0]
    body = f"{i:0{info.length - len(info.bin) - 1}d}"
    return luhn_complete(info.bin + body)


def credit_card(i: int) -> str:
    info = next(r for r in load_packaged_bins() if r.card_type == "CC" and r.bank_code == "CMB")
    return luhn_complete(info.bin + f"{i:0{info.length - len(info.bin) - 1}d}")


def corporate_account(i: int) -> str:
    return f"1100{i:013d}"


def micro(i: int, **over: str) -> dict[str, str]:
    """A valid 小微 merchant row (the operator's own debit card)."""
    name = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨帆", "赵磊", "黄敏"][i % 8]
    row = {"merchant_no": f"8981100581{i:05d}", "registered_name": f"朝阳区{name}便利店", "kind": "小微",
           "legal_person": name, "legal_person_id": resident_id(i), "uscc": "", "mcc": "5499", "city": "北京",
           "contact_mobile": f"1380013{i:04d}", "cycle": "T+1", "debit_rate": "0.5", "debit_cap": "20",
           "credit_rate": "0.6", "qr_rate": "0.38", "fee_effective_from": "2026-11-01", "holder_name": name,
           "holder_id": resident_id(i), "card_no": debit_card(i), "bank": "中国工商银行",
           "terminal_sn": f"SN{i:08d}A", "terminal_no": f"{10000000 + i * 10}", "terminal_model": "PAX A920"}
    row.update(over)
    return row


def enterprise(i: int, **over: str) -> dict[str, str]:
    """A valid 企业 merchant row (a corporate account in the company's name)."""
    company = f"北京{_CN[i % 10]}{_CN[i // 10 % 10]}商贸有限公司"
    row = micro(i, kind="企业", registered_name=company, uscc=uscc(i), mcc="5411", holder_name=company, holder_id="", card_no=corporate_account(i), bank="CCB",
                debit_rate="0.55", debit_cap="", credit_rate="0.6", qr_rate="0.3", cycle="D+0")
    row.update(over)
    return row


def individual(i: int, **over: str) -> dict[str, str]:
    """A valid 个体工商户 row settling to the operator's own debit card."""
    row = micro(i, kind="个体工商户", uscc=uscc(i, "2"), mcc="5812")
    row["registered_name"] = f"海淀区{row['legal_person']}饭店"
    row.update(over)
    return row


def csv_text(rows: list[dict[str, str]], header: list[str] = HEADER_ZH) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow([r.get(c, "") for c in HEADER_EN])
    return buf.getvalue()


def write_csv(path: Path, rows: list[dict[str, str]], encoding: str = "utf-8",
              header: list[str] = HEADER_ZH) -> Path:
    path.write_bytes(csv_text(rows, header).encode(encoding))
    return path


def write_xlsx(path: Path, rows: list[dict[str, str]], header: list[str] = HEADER_ZH) -> Path:
    from openpyxl import Workbook  # type: ignore[import-untyped]

    wb = Workbook()
    ws = wb.active
    ws.append(header)
    for r in rows:
        ws.append([r.get(c, "") for c in HEADER_EN])
    wb.save(path)
    return path
