"""The tamper-evident audit trail (审计日志): append-only, hash-chained events."""
