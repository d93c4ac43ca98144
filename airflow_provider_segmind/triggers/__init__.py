"""Segmind triggers."""
