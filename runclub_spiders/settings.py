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
