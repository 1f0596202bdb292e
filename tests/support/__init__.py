"""Shared test helpers: settings, databases, in-process servers and tokens."""
