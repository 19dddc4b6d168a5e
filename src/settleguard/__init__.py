"""settleguard: settle POS merchants' takings, diagnose settlement failures, recover the money.

结算卫士：为收单机构结算 POS 商户资金，诊断并恢复结算失败。
"""

__version__ = "0.1.0"
