"""Spiders of runclub-spiders."""
