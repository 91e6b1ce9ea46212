"""Imports every shipped connector so that each registers itself."""
