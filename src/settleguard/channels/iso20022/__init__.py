"""ISO 20022 files: the pain.001 payout batch we write, the pain.002 and camt.054 reports we read.

中文：ISO 20022 报文——我们生成的 pain.001 代付批量文件，以及我们读取的 pain.002 状态报告和
camt.054 借贷记通知（含成功后的退票）。Element by element in docs/formats.md.
"""
