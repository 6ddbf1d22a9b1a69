"""Compatibility package: aiges.core.types is aiges.types."""
