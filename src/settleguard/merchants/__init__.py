"""Merchants, their settlement accounts (bound cards), terminals and fee schedules."""
