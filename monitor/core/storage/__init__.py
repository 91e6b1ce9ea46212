"""Persistence: tables, engines, sessions and migrations."""
