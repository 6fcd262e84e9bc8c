"""The offline Spotify + ReccoBeats sandbox: `scrapy simulator`, or `Simulator(...)` in tests."""

from runclub_spiders.simulator.catalog import Catalog
from runclub_spiders.simulator.config import SimulatorConfig
from runclub_spiders.simulator.server import Simulator

__all__ = ["Catalog", "Simulator", "SimulatorConfig"]
