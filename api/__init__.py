"""HTTP edge: the rembg-compatible REST API (``api.rest``); ``app.py`` serves it beside the WebUI."""
