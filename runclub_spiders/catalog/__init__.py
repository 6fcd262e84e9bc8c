"""Turning the store's candidates into the catalog: classify, filter, dedupe, balance."""
