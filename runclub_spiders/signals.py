"""Signals of this project, sent through ``crawler.signals`` like Scrapy's own."""

#: The engine has started closing the spider (``reason``): stop waiting for anything and let
#: work in flight end now. Sent by ``extensions.prompt_close.PromptClose``, before Scrapy waits
#: for the requests in progress (``spider_closed`` comes only after them).
close_started = object()
