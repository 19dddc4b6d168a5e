"""History review (issue 22 item 5): a merchant's days and the failure trends of all merchants (docs/history.md)."""
