"""Reusable network blocks. No paper logic lives here: methods compose these."""
