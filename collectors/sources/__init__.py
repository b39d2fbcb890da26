"""Readers of the members' real source exports."""
