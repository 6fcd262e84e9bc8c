"""Downloader middlewares: service slots, Spotify OAuth, Retry-After and quota parks."""
