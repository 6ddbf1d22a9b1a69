"""Helpers for wrappers."""
