"""Deterministic demo data: merchants, settlement cards, terminals and POS transactions.

Demos, tests and benchmarks need realistic data that is the same on every run for the same
seed, without touching real cardholder data. See :mod:`settleguard.sim.generator`; the
simulated bank lives in :mod:`settleguard.channels.simulator`.
"""
