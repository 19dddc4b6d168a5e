"""Support cases (工单): opened by hand or automatically for payouts that need people, with an SLA,
a contact log and notes (docs/cases.md)."""
