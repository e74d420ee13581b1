"""What becomes a transcript besides the recorder (DESIGN.md, "Layout": ``chanlog/sources/``).

* :mod:`chanlog.sources.har`: HAR captures (Chrome DevTools, Playwright, mitmproxy ``hardump``) in, HAR out.

Importing this package imports nothing else; import the module you need.
"""
