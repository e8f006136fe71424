"""HTTP edges: the rembg-compatible REST API (``api.rest``) and the server assembly (``api.server``)."""
