"""Settings come from the environment or .env under the names the README documents."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from scrapy.utils.misc import is_generator_with_return_value
from scrapy.utils.spider import iter_spider_classes

from runclub_spiders.env import ADDRESSES, SECRETS
from runclub_spiders.spiders import catalog_export, spotify_catalog, spotify_probe

REPO = Path(__file__).resolve().parents[1]


def scrapy_get(names: str, cwd: Path, **env: str) -> dict[str, str]:
    """``scrapy settings --get NAME`` for each of ``names`` (space-separated), as the command
    prints them, from one process: the same project settings (``scrapy.cfg`` in ``cwd``, the
    environment, ``.env``) without a Scrapy start-up per name."""
    clean = {k: v for k, v in os.environ.items() if k not in ADDRESSES and k not in SECRETS}
    clean.update(env, PYTHONPATH=str(REPO), SCRAPY_SETTINGS_MODULE="runclub_spiders.settings")
    script = ("import json, sys\n"
              "from scrapy.utils.project import get_project_settings\n"
              "settings = get_project_settings()\n"
              "print(json.dumps({n: str(settings.get(n)) for n in sys.argv[1:]}))")
    result = subprocess.run([sys.executable, "-c", script, *names.split()],
                            cwd=cwd, env=clean, capture_output=True, text=True, timeout=60,
                            check=True)
    return json.loads(result.stdout)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "scrapy.cfg").write_text("[settings]\ndefault = runclub_spiders.settings\n")
    return tmp_path


def test_defaults(workdir):
    assert scrapy_get("SPOTIFY_API_BASE_URL SPOTIFY_ACCOUNTS_BASE_URL RECCOBEATS_BASE_URL "
                      "SPOTIFY_MARKET SPOTIFY_API_PROFILE REMOTE_CONTROL_ENABLED "
                      "FEED_EXPORT_ENCODING", workdir) == {
        "SPOTIFY_API_BASE_URL": "https://api.spotify.com/v1",
        "SPOTIFY_ACCOUNTS_BASE_URL": "https://accounts.spotify.com",
        "RECCOBEATS_BASE_URL": "https://api.reccobeats.com/v1",
        "SPOTIFY_MARKET": "US", "SPOTIFY_API_PROFILE": "development",
        "REMOTE_CONTROL_ENABLED": "False", "FEED_EXPORT_ENCODING": "utf-8"}


def test_environment_overrides_defaults(workdir):
    url = "http://127.0.0.1:9/spotify/v1"
    assert scrapy_get("SPOTIFY_API_BASE_URL SPOTIFY_API_PROFILE", workdir,
                      SPOTIFY_API_BASE_URL=url, SPOTIFY_API_PROFILE="extended") == {
        "SPOTIFY_API_BASE_URL": url, "SPOTIFY_API_PROFILE": "extended"}


def test_dotenv_is_loaded_but_never_beats_the_environment(workdir):
    (workdir / ".env").write_text("RECCOBEATS_BASE_URL=http://127.0.0.1:1/reccobeats/v1\n"
                                  "SPOTIFY_MARKET=se\n")
    assert scrapy_get("RECCOBEATS_BASE_URL SPOTIFY_MARKET", workdir) == {
        "RECCOBEATS_BASE_URL": "http://127.0.0.1:1/reccobeats/v1", "SPOTIFY_MARKET": "SE"}
    assert scrapy_get("SPOTIFY_MARKET", workdir, SPOTIFY_MARKET="GB") == {"SPOTIFY_MARKET": "GB"}


def test_secrets_are_not_settings(workdir):
    secret = "s3cr3t-value-for-test"
    names = ("SPOTIFY_CLIENT_SECRET", "SPOTIFY_REFRESH_TOKEN")
    got = scrapy_get(" ".join(names), workdir, **dict.fromkeys(names, secret))
    assert set(got.values()) <= {"", "None"}


def test_env_example_lists_every_variable_with_a_comment():
    lines = (REPO / ".env.example").read_text().splitlines()
    for name in [*ADDRESSES, *SECRETS]:
        index = next(i for i, line in enumerate(lines) if re.match(rf"{name}=", line))
        assert lines[index - 1].startswith("# "), f"{name} has no one-line comment above it"


@pytest.mark.parametrize("old", ["STORE_PATH", "PROGRESS_INTERVAL", "ARTIST_LOOKUP_BUDGET",
                                 "RETRY_BACKOFF_BASE", "RETRY_BACKOFF_MAX"])
def test_a_setting_under_its_old_name_is_refused_with_the_new_one(old):
    from scrapy.settings import Settings  # noqa: PLC0415

    import runclub_spiders.settings as project  # noqa: PLC0415
    from runclub_spiders.commands.crawl import (  # noqa: PLC0415
        RENAMED_SETTINGS,
        ConfigError,
        preflight,
    )

    settings = Settings({"SPOTIFY_MARKET": "US", "SPOTIFY_API_PROFILE": "development",
                         old: "1"})
    with pytest.raises(ConfigError, match=rf"^{old} is now called {RENAMED_SETTINGS[old]}:"):
        preflight(settings)
    assert hasattr(project, RENAMED_SETTINGS[old]) and not hasattr(project, old)


def test_no_spider_callback_is_a_generator_that_returns_a_value():
    """What ``WARN_ON_GENERATOR_RETURN_VALUE`` (off in settings.py) would warn of at every
    response: a ``return value`` inside a generator callback, whose value Scrapy drops."""
    generators = [function for module in (catalog_export, spotify_catalog, spotify_probe)
                  for spider in iter_spider_classes(module)
                  for _, function in inspect.getmembers(spider, inspect.isfunction)
                  if inspect.isgeneratorfunction(function)]
    assert "SpotifyCatalogSpider.parse_search" in {f.__qualname__ for f in generators}
    assert [f.__qualname__ for f in generators if is_generator_with_return_value(f)] == []
