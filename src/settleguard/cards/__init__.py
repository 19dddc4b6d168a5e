"""Settlement cards: PAN checks, masking, encryption."""
