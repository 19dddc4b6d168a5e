"""Reconciliation (对账): bank statements in (camt.053/.054, Chinese bank files); matching and breaks come later.

See docs/reconciliation.md.
"""
