"""Segmind operators."""
