"""Discovery across Spotify's quota buckets (issue 14), on the wire against the simulator.

Development Mode counts quota per endpoint bucket over a rolling 24 h window. The crawl
draws on search, albums and artists; a bucket that is spent is parked on its own while the
others keep working, and nothing is sent to a parked bucket. (The stop rule, which gives up
a cell where a request is not expected to bring DISCOVERY_MIN_YIELD exportable tracks, is
checked on the crawl of tests/test_discovery.py, test_development_discovery_fills_...)
"""

from __future__ import annotations

from collections import Counter

from scrapy.utils.defer import deferred_f_from_coro_f

from tests.conftest import use_credentials
from tests.test_discovery import SIZE, crawl

DAY = 86_400
TOLERANCE = 0.5            # seconds: a request in flight when the park began may still land


def after_park(sim, bucket: str):
    """The simulator's log split at the first QUOTA_EXCEEDED of ``bucket``."""
    log = sim.requests(service="spotify")
    first = next(i for i, e in enumerate(log) if e.bucket == bucket and e.fault == "quota")
    return log[:first], log[first], log[first + 1:]


@deferred_f_from_coro_f
async def test_while_search_is_parked_albums_and_artists_keep_working(simulator_factory,
                                                                     monkeypatch, tmp_path):
    sim = simulator_factory(size=SIZE, profile="development", quota={"search": 60},
                            quota_window=DAY)
    use_credentials(monkeypatch, sim)
    # No artist cap: with this test's small cells (TARGET) it would leave few albums worth
    # reading (tests/test_catalog_selection.py covers the cap). The first run only searches,
    # so that albums found are left for the next run.
    _, first = await crawl(sim, tmp_path, CATALOG_MAX_ARTIST_SHARE=0, DISCOVERY_ALBUMS=False,
                           DISCOVERY_ARTIST_ALBUMS=False, DISCOVERY_RECCO_LEADS=False)
    assert first["finish_reason"] == "quota_parked"
    assert first.get("log_count/ERROR", 0) == 0
    before, refusal, after = after_park(sim, "search")
    assert refusal.status == 429 and int(refusal.retry_after) > 3600
    assert [e.status for e in before if e.bucket == "search"] == [200] * 60
    # Nothing more reached the parked bucket but what was already on the wire with it.
    late = [e for e in after if e.bucket == "search"]
    assert all(e.status == 429 and e.t <= refusal.t + TOLERANCE for e in late)
    assert first["quota/parks"] == 1 and first["quota/set_aside/search"] >= 1

    # The next run, the same day: search is still parked (the store says until when), so it
    # asks no search at all, reads albums and lists artists, and ends quota_parked again.
    mark = len(sim.requests())
    _, second = await crawl(sim, tmp_path, CATALOG_MAX_ARTIST_SHARE=0)
    assert second["finish_reason"] == "quota_parked"
    assert second.get("log_count/ERROR", 0) == 0
    spent = Counter(e.bucket for e in sim.requests(mark, service="spotify"))
    assert spent["search"] == 0
    assert spent["albums"] > 10 and spent["artists"] > 0
    assert {e.status for e in sim.requests(mark, service="spotify")} == {200}
    assert second["discovery/album/pages"] == spent["albums"]
    assert second["discovery/album/new_tracks"] > 5 * spent["albums"]
    assert second["quota/resume_after"] == first["quota/resume_after"]


@deferred_f_from_coro_f
async def test_while_albums_are_parked_search_keeps_working(simulator_factory, monkeypatch,
                                                           tmp_path):
    sim = simulator_factory(size=SIZE, profile="development", quota={"albums": 8},
                            quota_window=DAY)
    use_credentials(monkeypatch, sim)
    _, stats = await crawl(sim, tmp_path, CATALOG_MAX_ARTIST_SHARE=0)
    assert stats["finish_reason"] == "quota_parked"
    assert stats.get("log_count/ERROR", 0) == 0
    before, refusal, after = after_park(sim, "albums")
    assert [e.status for e in before if e.bucket == "albums"] == [200] * 8
    late = [e for e in after if e.bucket == "albums"]
    assert all(e.status == 429 and e.t <= refusal.t + TOLERANCE for e in late)
    searched = [e for e in after if e.bucket == "search"]
    assert len(searched) > 50 and {e.status for e in searched} == {200}
    # What the albums bucket still owes is told, for the next run.
    assert stats["quota/resume_after"] == stats["quota/parked_until/albums"]
