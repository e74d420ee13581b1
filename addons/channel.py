"""mitmproxy script: ``mitmdump -s addons/channel.py`` records Aeternity channel sessions (placeholder)."""
