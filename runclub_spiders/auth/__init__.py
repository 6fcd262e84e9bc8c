"""Spotify credentials: the token file, and reading credentials from the environment."""
