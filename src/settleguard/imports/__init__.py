"""Importers of external files (POS transaction files)."""
