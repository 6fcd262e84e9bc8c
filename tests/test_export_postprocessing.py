"""ThreadedGzipPlugin: GzipPlugin's bytes from a worker thread, errors not lost."""

from __future__ import annotations

import contextlib
import gzip
import os
from pathlib import Path

import pytest
from scrapy.extensions.postprocessing import GzipPlugin

from runclub_spiders.export.postprocessing import ThreadedGzipPlugin

OPTIONS = {"gzip_compresslevel": 6, "gzip_mtime": 0, "gzip_filename": ""}


def lines(n: int) -> list[bytes]:
    """JSON-ish lines, varied enough that deflate emits many blocks."""
    return [b'{"id":"%022d","name":"Song %d","tempo":%d.5}\n' % (i, i * 7919, i % 211)
            for i in range(n)]


def write_all(plugin_class: type, path: Path, data: list[bytes]) -> None:
    with path.open("wb") as file:
        plugin = plugin_class(file, dict(OPTIONS))
        for line in data:
            assert plugin.write(line) == len(line)
        plugin.close()


def test_same_bytes_as_scrapys_gzip_plugin(tmp_path):
    data = lines(60_000)                      # about 3.5 MB: several 1 MB hand-overs
    write_all(GzipPlugin, tmp_path / "scrapy.gz", data)
    write_all(ThreadedGzipPlugin, tmp_path / "threaded.gz", data)
    threaded = (tmp_path / "threaded.gz").read_bytes()
    assert threaded == (tmp_path / "scrapy.gz").read_bytes()
    assert gzip.decompress(threaded) == b"".join(data)


def test_empty_feed_is_a_valid_empty_gzip(tmp_path):
    write_all(ThreadedGzipPlugin, tmp_path / "empty.gz", [])
    assert gzip.decompress((tmp_path / "empty.gz").read_bytes()) == b""


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_disk_full_in_the_worker_reaches_the_feed():
    """A write that fails on the worker thread is raised in the reactor thread, by a later
    write or by close, so Scrapy's feed slot sees it and the export is not published."""
    # Not a context manager: its exit would raise ENOSPC again while flushing its buffer.
    file = Path("/dev/full").open("wb")  # noqa: SIM115
    try:
        plugin = ThreadedGzipPlugin(file, dict(OPTIONS))   # header: still in the buffer
        with pytest.raises(OSError, match="No space left"):
            for line in lines(200_000):
                plugin.write(line)
            plugin.close()
    finally:
        with contextlib.suppress(OSError):
            file.close()
