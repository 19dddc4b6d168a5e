"""Merchant notices: the outbox, templates (zh first, then en) and delivery by webhook, email and SMS
(docs/notifications.md)."""
