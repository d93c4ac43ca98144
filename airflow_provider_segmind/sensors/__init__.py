"""Segmind sensors."""
