"""Reference data several domains read: the BIN table in force (cards bind with it, merchant onboarding
checks settlement cards with it). Here, below both, so that neither imports the other to read it."""
