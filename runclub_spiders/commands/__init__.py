"""Custom Scrapy commands: ``scrapy simulator``."""
