"""Guidance feedback (issue 22 item 6, 反馈机制): helpful or not, why, and what followed (docs/history.md)."""
