"""Scrapy extensions of runclub-spiders (the export publisher lives in ``export.extension``)."""
