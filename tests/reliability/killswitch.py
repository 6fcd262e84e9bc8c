"""A test add-on that SIGKILLs the crawl at a chosen point, like a laptop losing power.

``-s ADDONS='{"tests.reliability.killswitch.KillSwitchAddon": 0}' -s KILL_AT=<point>:<n>``:

* ``discovery:N``: after the N-th search response arrives (before its callback runs);
* ``enrichment:N``: after the N-th ReccoBeats response;
* ``leads:N``: after the N-th ``/tracks/{id}`` response (a ReccoBeats lead confirmed);
* ``lead_pages:N``: after the N-th page of an artist's ReccoBeats track list;
* ``store:N``: inside the N-th search-page transaction, after its edges are written and
  before it commits;
* ``export:N``: after N catalog rows reached the feeds (the staging files are half written);
* ``publish:1``: while publishing, after the old export was moved aside and before the new
  one is moved in. The real ``feeds.publish`` runs (fsync, the first rename); the kill is
  its ``os.replace`` whose source is the staging folder, before that rename happens
  (``publish:N``: the N-th such rename in the process).

No cleanup of any kind runs: no ``spider_closed``, no feed close, no store close.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from scrapy import signals

# Which responses a kill point counts, by their URL.
RESPONSES = {
    "discovery": lambda url: "/search" in url,
    "enrichment": lambda url: "/reccobeats/" in url,
    "leads": lambda url: "/v1/tracks/" in url,
    "lead_pages": lambda url: "/reccobeats/" in url and "/artist/" in url
    and "/track?" in url,
}


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillSwitch:
    def __init__(self, crawler) -> None:
        point, _, n = crawler.settings["KILL_AT"].partition(":")
        self.point, self.limit, self.count = point, int(n or 1), 0
        if point in RESPONSES:
            crawler.signals.connect(self.response_received, signal=signals.response_received)
        elif point == "export":
            crawler.signals.connect(self.item_scraped, signal=signals.item_scraped)
        elif point == "store":
            self._patch_store()
        elif point == "publish":
            self._patch_publish()
        else:
            raise ValueError(f"KILL_AT={crawler.settings['KILL_AT']!r}")

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def _tick(self) -> None:
        self.count += 1
        if self.count >= self.limit:
            die()

    def response_received(self, response, request, spider) -> None:
        if RESPONSES[self.point](response.url) and response.status == 200:
            self._tick()

    def item_scraped(self, item, response, spider) -> None:
        if type(item).__name__ == "TrackExport":
            self._tick()

    def _patch_store(self) -> None:
        from runclub_spiders.store import Store  # noqa: PLC0415

        original = Store.add_edges
        switch = self

        def add_edges(store, *args, **kwargs):
            original(store, *args, **kwargs)
            assert store.db.in_transaction
            switch._tick()

        Store.add_edges = add_edges

    def _patch_publish(self) -> None:
        """Wrap ``os.replace`` as ``runclub_spiders.export.feeds`` sees it (that module only:
        its ``os`` becomes a proxy of the real module) so that the real publish runs."""
        from runclub_spiders.export import feeds  # noqa: PLC0415

        real_os, switch = feeds.os, self

        def replace(src, dst, *args, **kwargs):
            if Path(src) == feeds.staging_dir(dst):     # moving the new export in
                switch._tick()
            return real_os.replace(src, dst, *args, **kwargs)

        class FeedsOs:
            def __getattr__(self, name):
                return replace if name == "replace" else getattr(real_os, name)

        feeds.os = FeedsOs()


class KillSwitchAddon:
    """Adds ``KillSwitch`` to the project's extensions without replacing them."""

    def update_settings(self, settings) -> None:
        settings["EXTENSIONS"][f"{__name__}.KillSwitch"] = 900
