"""Emporium's Python services and their shared platform."""
