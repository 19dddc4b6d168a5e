"""The ``settleguard`` command line (Typer + Rich)."""
