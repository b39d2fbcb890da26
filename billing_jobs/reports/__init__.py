"""Reports for the shared organisation and its members: ``chargeback report ...``."""
