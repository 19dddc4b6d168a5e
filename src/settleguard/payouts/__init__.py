"""Payouts: one per merchant per cycle, their attempts, and the status machine."""
