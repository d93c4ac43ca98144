"""Segmind hooks."""
