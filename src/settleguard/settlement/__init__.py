"""Settlement: cycles, calendars, fee schedules and the set-based settlement engine."""
