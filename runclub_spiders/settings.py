"""Scrapy settings for runclub-spiders.

External addresses come from the environment (or ``.env``) under the same names; see
``runclub_spiders/env.py`` and the README's settings table. Secrets are never settings.
"""

from runclub_spiders.env import env, load_env_file

load_env_file()

BOT_NAME = "runclub_spiders"
SPIDER_MODULES = ["runclub_spiders.spiders"]
NEWSPIDER_MODULE = "runclub_spiders.spiders"
COMMANDS_MODULE = "runclub_spiders.commands"

# --- where the APIs are (the simulator's `scrapy simulator` prints values for these) --------
SPOTIFY_API_BASE_URL = env("SPOTIFY_API_BASE_URL")
SPOTIFY_ACCOUNTS_BASE_URL = env("SPOTIFY_ACCOUNTS_BASE_URL")
RECCOBEATS_BASE_URL = env("RECCOBEATS_BASE_URL")
SPOTIFY_MARKET = env("SPOTIFY_MARKET").upper()
SPOTIFY_API_PROFILE = env("SPOTIFY_API_PROFILE").lower()

# The live capability probe (runclub_spiders/probe.py; `scrapy spotify-probe` runs it now): at
# the start of a crawl at most once per interval, <= 12 Spotify calls; the plan adapts to it.
SPOTIFY_PROBE_ENABLED = True
SPOTIFY_PROBE_INTERVAL_DAYS = 7

# --- runtime --------------------------------------------------------------------------------
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
# 2.19 turns on a localhost code-execution console; a week-long crawl needs none.
REMOTE_CONTROL_ENABLED = False
TELNETCONSOLE_ENABLED = False
# JSON APIs with their own terms; there is no robots.txt to honour on them.
ROBOTSTXT_OBEY = False
# ReccoBeats sits behind Cloudflare, which blocks library-default User-Agents (error 1010).
USER_AGENT = "runclub-spiders/0.1 (personal RunClub catalog builder)"
DEFAULT_REQUEST_HEADERS = {"Accept": "application/json"}
COOKIES_ENABLED = False
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"
# Scrapy reads and parses a generator callback's source again for every response, to warn
# of a `return value` in it (its cache misses bound methods): ~2% of a crawl's CPU. The
# spiders' callbacks are checked once, in tests/test_settings.py, instead.
WARN_ON_GENERATOR_RETURN_VALUE = False

# --- Spotify access ---------------------------------------------------------------------------
# Credentials are read from the environment (SPOTIFY_CLIENT_ID, SPOTIFY_CLIENT_SECRET and
# SPOTIFY_REFRESH_TOKEN, or the token file below); they are never settings.
SPOTIFY_AUTH_ENABLED = True
SPOTIFY_TOKEN_FILE = ".cache/spotify_token.json"    # written by `scrapy spotify-auth`, mode 600
SPOTIFY_TOKEN_REFRESH_MARGIN = 300                   # renew access tokens this early, seconds

# --- Rate limits and quotas -------------------------------------------------------------------
# Three downloader middlewares, one concern each (DOWNLOADER_MIDDLEWARES below):
# * pacing: a 429 with Retry-After up to RATE_LIMIT_MAX_WAIT (or none: backoff) pauses that
#   service's slot and retries; two in a row teach the slot's pace, kept as its delay.
# * quota: a QUOTA_EXCEEDED 429 or a longer Retry-After parks the endpoint bucket (search,
#   tracks, artists, albums, playlists, user, reccobeats) until then; requests per bucket per
#   UTC day and per hour, and parks, are kept in the store (CATALOG_STORE_PATH), across
#   restarts.
# * retry: 5xx, timeouts and dropped connections, with exponential backoff.
RATE_LIMIT_MAX_WAIT = 60
RATE_LIMIT_MAX_RETRIES = 20          # short 429s per request before giving up
RATE_LIMIT_WINDOW = 30               # Spotify's rolling window, seconds: a short 429 teaches
RATE_LIMIT_LEARN_MIN = 20            # the slot's pace if at least this many went out in it
QUOTA_PARK_DEFAULT = 86_400          # park length when QUOTA_EXCEEDED comes without Retry-After
QUOTA_PARK_IDLE_WAIT = 600           # wait in-process for parks that end within this; else
                                     # close with reason quota_parked and resume later
# Optional requests per bucket in any 24 h, counted as Spotify counts its quota (a rolling
# window, by whole hours: the last 24-25 h): at its budget the bucket parks until its oldest
# hours have left the window, before Spotify locks it for up to 24 h. Example:
# {"search": 2000, "playlists": 500}.
SPOTIFY_DAILY_BUDGET: dict[str, int] = {}
RETRY_TIMES = 5                      # 5xx, timeouts, dropped connections
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408]   # 429 is pacing's and quota's
RATE_LIMIT_BACKOFF_BASE = 1.0        # exponential backoff with jitter: base * 2**(n-1) s,
RATE_LIMIT_BACKOFF_MAX = 60.0        # capped
DOWNLOAD_TIMEOUT = 30
# The spider retries garbled JSON with Scrapy's get_retry_request, which carries retry_times
# on purpose; the 2.19 meta-copy check would warn about it.
META_COPY_WARN_SKIP_KEYS = ["retry_times"]

DOWNLOADER_MIDDLEWARES = {
    "runclub_spiders.downloadermiddlewares.service_slots.ServiceSlotsMiddleware": 50,
    # Replaced by the backoff retry below (RETRY_ENABLED turns that one off, and only it).
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "runclub_spiders.downloadermiddlewares.retry.BackoffRetryMiddleware": 550,
    "runclub_spiders.downloadermiddlewares.pacing.PacingMiddleware": 555,
    # Above the redirect (600) and retry (550) middlewares, so it strips the Authorization
    # header on the way back before either can copy the request into the scheduler/JOBDIR.
    "runclub_spiders.downloadermiddlewares.spotify_auth.SpotifyAuthMiddleware": 650,
    # Last of ours on the way out: a request may wait in an earlier middleware (auth awaits
    # its token), and a park that starts meanwhile must still refuse it; nothing awaits
    # between this check and the download slot. Above pacing on the way back, so a
    # QUOTA_EXCEEDED 429 is refused here before pacing could take it for a short one.
    "runclub_spiders.downloadermiddlewares.quota.QuotaMiddleware": 660,
}

# --- Concurrency: tune here ---------------------------------------------------------------------
# Slots are per service (see services.py), keyed by the real hostnames. Spotify limits per
# app over a rolling 30 s window and does not publish the number; Development Mode is lower
# than Extended. Start with 1-2 requests in flight and let AutoThrottle find the delay from
# latency: raise "concurrency" only while the crawl log shows no 429s ("ratelimit/429" in the
# stats). Each 429 pauses the slot for its Retry-After, so over-eager settings cost time, not
# correctness; two in a row teach the slot its pace (stat "ratelimit/pacing/<slot>"), which
# then holds the slot's delay (over AutoThrottle's) at window / limit, without jitter.
# ReccoBeats publishes no limit either; clients pace it at 1-2 req/s with 1-2 in flight, and
# each call carries 40 IDs, so it is rarely the bottleneck. The accounts service
# is called about once an hour.
CONCURRENT_REQUESTS = 8
DOWNLOAD_DELAY = 0.0                 # AutoThrottle's floor; slot delays below are start values
DOWNLOAD_SLOTS = {
    "api.spotify.com": {"concurrency": 2, "delay": 0.25, "jitter": 0.1},
    "accounts.spotify.com": {"concurrency": 1, "delay": 0.0},
    "api.reccobeats.com": {"concurrency": 2, "delay": 0.5, "jitter": 0.1},
    # Open data (pipelines/opendata.py): one request at a time each; MusicBrainz allows one
    # per second per IP, the Wikidata query service asks for modest, serial use.
    "musicbrainz.org": {"concurrency": 1, "delay": 1.0},
    "query.wikidata.org": {"concurrency": 1, "delay": 1.0},
}
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.5       # Scrapy's default of 5 s suits websites, not APIs
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0  # average requests in flight per slot

# --- Discovery ----------------------------------------------------------------------------------
CATALOG_STORE_PATH = ".cache/catalog.sqlite"   # the resumable store (SQLite, WAL)
SEEDS_PLAN = "seeds/plan.yaml"
SEEDS_UMBRELLAS = "seeds/umbrellas.yaml"
CATALOG_CELL_MIN = 400                 # exported tracks per umbrella x decade cell, at least
CATALOG_CELL_TARGET = 600              # soft target per cell
CATALOG_MAX_TRACKS = 40_000            # global cap of the export
CATALOG_MIN_DURATION_MS = 120_000      # 2 minutes
CATALOG_MAX_DURATION_MS = 360_000      # 6 minutes: never longer
# Room for the app's per-artist spacing: no artist holds more than this share of a cell's
# exported tracks (or CATALOG_MAX_ARTIST_FLOOR tracks where that is more), except where the
# cell would otherwise stay below CATALOG_CELL_MIN (counted in the coverage report).
CATALOG_MAX_ARTIST_SHARE = 0.10
CATALOG_MAX_ARTIST_FLOOR = 4
# Discovery gathers more candidates than the export keeps: ReccoBeats knows about 60% of
# Spotify tracks (docs/simulator.md, "ReccoBeats") and ISRC duplicates collapse, so about 55%
# of the candidates of a cell can be exported with features.
DISCOVERY_OVERSAMPLE = 1.8
DISCOVERY_CONCURRENCY = 2              # requests in flight per quota bucket (search, albums...)
DISCOVERY_MIN_NEW_PER_PAGE = 4         # per 10 results: a page below this is "low yield"...
DISCOVERY_PATIENCE = 2                 # ...and this many low pages in a row stop the query
DISCOVERY_FAMILY_TRIAL = 20            # requests before a query family is judged
DISCOVERY_FAMILY_MIN_YIELD = 1.0       # new tracks per request below which it is demoted
DISCOVERY_ARTIST_LOOKUP_BUDGET = 0     # development: per-artist /artists/{id} calls allowed
DISCOVERY_PROGRESS_INTERVAL = 60       # seconds between progress lines
# Besides search, discovery draws on the albums bucket (/albums/{id}: an album found for a
# needy cell, up to 50 of its tracks in one call) and the artists bucket
# (/artists/{id}/albums: the albums and singles of an artist known in a needy umbrella).
DISCOVERY_ALBUMS = True
DISCOVERY_ARTIST_ALBUMS = True
# The price of a request: discovery stops spending on a cell when the expected new exportable
# tracks per request there fall below this. 1.0 (BENCHMARKS.md, "Days of quota"): the same
# days to a complete 15k catalog as 0.5, 21% fewer requests, and 0.78 Spotify requests per
# exported track on a small catalog (0.88 at 0.5).
DISCOVERY_MIN_YIELD = 1.0
# ReccoBeats leads (frontier/leads.py): ReccoBeats lists the tracks of artists a cell query
# named, with Spotify IDs, and each is confirmed with /tracks/{id}: the tracks bucket, which
# nothing else uses in Development Mode. A lead is asked when the chance it counts toward a
# cell is at least DISCOVERY_LEAD_MIN_WORTH (one call brings at most one track).
DISCOVERY_RECCO_LEADS = True
DISCOVERY_LEAD_MIN_WORTH = 0.5
# ReccoBeats track-list pages read for leads, at most, per candidate counted toward a cell
# below its target. ReccoBeats publishes no limit; the crawl keeps under 0.1 calls to it per
# exported track. The feature batches take ~0.05 of that, and about half the counted
# candidates are exported, so pages may take ~0.025 per candidate: 0.02 (BENCHMARKS.md,
# session 23). Without it, a large tracks bucket (2,000 a day) read pages down to ~1 lead
# each. 0: no cap.
DISCOVERY_LEAD_PAGES_PER_CANDIDATE = 0.02

# --- Enrichment ----------------------------------------------------------------------------------
ITEM_PIPELINES = {
    "runclub_spiders.pipelines.cheap_filters.CheapFilterPipeline": 100,
    "runclub_spiders.pipelines.enrichment.ReccoBeatsEnrichmentPipeline": 200,
    "runclub_spiders.pipelines.opendata.OpenDataPipeline": 300,
}
RECCOBEATS_BATCH_SIZE = 40             # IDs per /audio-features or /track call (API cap: 40)
RECCOBEATS_BATCH_WAIT = 1.0            # send a part-full batch this long after its first ID
RECCOBEATS_MISS_TTL_DAYS = 60          # ask again for tracks ReccoBeats had no features for
CATALOG_MAX_FEATURELESS_SHARE = 0.01   # at most 1% of exported tracks without features

# --- Open data: Wikidata genres, MusicBrainz original years (pipelines/opendata.py) ---------
# Both optional: asked beside the crawl, never in its way (a source that is down, slow or
# failing is parked for the run; the export goes on without it and the manifest says so).
# Every answer is kept in the store, so nothing is asked twice. Credits: README, "Open data".
WIKIDATA_ENABLED = True
WIKIDATA_SPARQL_URL = env("WIKIDATA_SPARQL_URL")
WIKIDATA_BATCH_SIZE = 200              # Spotify artist IDs per SPARQL query (VALUES list)
WIKIDATA_INTERVAL = 1.0                # seconds between two queries, at least
WIKIDATA_GENRE_MAP = "seeds/wikidata_genres.yaml"   # Wikidata labels -> Spotify-style genres
MUSICBRAINZ_ENABLED = True             # also needs MUSICBRAINZ_CONTACT, else off with a warning
MUSICBRAINZ_BASE_URL = env("MUSICBRAINZ_BASE_URL")
MUSICBRAINZ_CONTACT = env("MUSICBRAINZ_CONTACT")    # your email or URL, in the User-Agent
MUSICBRAINZ_BATCH_SIZE = 40            # ISRCs per search (isrc:A OR isrc:B ...), limit=100
MUSICBRAINZ_INTERVAL = 1.0             # MusicBrainz allows one request per second per IP
OPENDATA_BATCH_WAIT = 2.0              # send a part-full batch this long after its first key
OPENDATA_IDLE_WAIT = 120.0             # keep the crawl open this long for them at its end
OPENDATA_RETRIES = 3                   # per request; backoff, Retry-After honoured...
OPENDATA_MAX_WAIT = 60.0               # ...up to this; a longer Retry-After parks the source
OPENDATA_PARK_AFTER = 3                # failed batches in a row before the source is parked
OPENDATA_TIMEOUT = 30.0                # seconds per request (MusicBrainz is slow under load)

# --- Export -----------------------------------------------------------------------------------
# After discovery the catalog_export spider builds the catalog from the store and writes it to
# EXPORT_DIR through Scrapy feeds (that spider adds them to FEEDS, and its publisher to
# EXTENSIONS): catalog_wide, cached_tracks, audio_features and cached_artists as .jsonl and
# .jsonl.gz, plus coverage.md/.png and manifest.json. The folder is replaced as a whole, only
# by a complete export. SOURCE_DATE_EPOCH (environment) fixes createdAt and clamps every
# timestamp, for byte-identical exports of the same store.
EXPORT_ENABLED = True
EXPORT_DIR = "exports/catalog"
EXPORT_COPIES: list[str] = []          # analyst copies of the wide file: "csv", "parquet"
EXPORT_PRIMARY_MARKETS = ["US", "CA", "GB", "AU"]   # for available_primary_markets
EXPORT_GZIP_LEVEL = 6
EXTENSIONS = {
    # Opens CATALOG_STORE_PATH for every component; closes it when the engine stops.
    "runclub_spiders.extensions.store.CatalogStore": 50,
    "runclub_spiders.extensions.jobdir_version.JobdirVersionRecorder": 100,
    # Every close reason exits promptly, with batches, refreshes or backoffs in flight.
    "runclub_spiders.extensions.prompt_close.PromptClose": 110,
}
# The same JSON Lines, written by orjson: 10x faster than Scrapy's exporter on 150,000 rows.
FEED_EXPORTERS = {"jsonlines": "runclub_spiders.export.exporters.FastJsonLinesItemExporter"}
