"""The double-entry ledger: append-only entries of balanced postings."""
