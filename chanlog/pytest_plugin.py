"""pytest plugin (``pytest11`` entry point ``chanlog``): fixtures that serve a transcript as a fake node."""
