"""What becomes a transcript besides the recorder (DESIGN.md, "Layout": ``chanlog/sources/``).

* :mod:`chanlog.sources.nodelog`: the node's Markdown channel logs, every era (current, stamped 2019, 2018,
  scraped pages), read as a stream of events.
* :mod:`chanlog.sources.har`: HAR captures (Chrome DevTools, Playwright, mitmproxy ``hardump``) read, and
  HAR written; pairing a HAR's connections into sessions runs the recorder itself
  (:mod:`chanlog.record.har`).

Importing this package imports nothing else; import the module you need.
"""
