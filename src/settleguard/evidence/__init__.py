"""Evidence bundles (证据包) of a case: a zip of everything that shows what happened to its payouts, with a
manifest of SHA-256 hashes that ``settleguard evidence verify`` checks (docs/cases.md)."""
