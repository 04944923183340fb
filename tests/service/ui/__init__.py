"""Helpers that drive the browser app at /ui."""
