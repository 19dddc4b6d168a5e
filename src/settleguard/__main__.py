"""``python -m settleguard`` runs the command line."""

from settleguard.cli.main import main

main()
