"""Bank channels: the BankChannel protocol, outcome types and implementations."""
