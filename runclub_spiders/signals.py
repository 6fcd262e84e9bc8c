"""Signals of this project, sent through ``crawler.signals`` like Scrapy's own."""

#: The engine has started closing the spider (``reason``): stop waiting for anything and let
#: work in flight end now. Sent by ``extensions.prompt_close.PromptClose``, before Scrapy waits
#: for the requests in progress (``spider_closed`` comes only after them).
close_started = object()

#: A quota bucket is parked (``bucket``, ``until``: epoch seconds, ``reason``): nothing may be
#: sent to it before then. Sent by the quota middleware when a park starts, and when the
#: spider opens for a park a previous run recorded (the frontier, made later, reads those from
#: the store); the frontier holds that bucket's work.
bucket_parked = object()

#: A parked bucket may be used again (``bucket``). Sent by the quota middleware when the park
#: ends while the crawl runs; the frontier sends the work it held for it.
bucket_released = object()

#: The export spider has selected the catalog (``build``: an ``export.build.ExportBuild``) and
#: starts handing its rows to the feeds. Sent by ``spiders.catalog_export``; the publisher
#: (``export.extension.ExportPublisher``) keeps it for the reports and the manifest. The build's
#: ``counts`` are set once every row has been handed over.
export_built = object()
