"""The merchant self-service troubleshooter (自助排障, issue 21 item 5): docs/troubleshoot.md."""
