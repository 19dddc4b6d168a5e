"""Merchant statements (对账单): docs/statements.md."""
