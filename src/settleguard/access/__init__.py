"""Access: users, roles, API tokens, browser sessions and passwords — who may do what, decided in one place
(:mod:`settleguard.access.model`) for the API, the console, the portal and ``settleguard users``."""
