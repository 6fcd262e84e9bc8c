"""Open-data sources beside Spotify and ReccoBeats (issue 15, part 3).

* ``wikidata``: genres of artists, looked up by Spotify artist ID (P1902) to genre (P136)
  labels through the SPARQL endpoint; CC0.
* ``musicbrainz``: the original release year of a recording, by ISRC, through the search API
  (``isrc:A OR isrc:B ...``); core data CC0.
* ``mapping``: Wikidata genre labels to the Spotify-style genre names the app knows
  (``seeds/wikidata_genres.yaml``).

The modules here build requests and read answers without side effects; asking during the
crawl, storing and pacing are ``pipelines/opendata.py``'s.
"""
