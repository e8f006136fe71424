"""The Gradio WebUI: ``build_ui(settings)`` builds the Blocks; ``app.py`` serves them beside the REST API."""

from ui.blocks import build_ui

__all__ = ["build_ui"]
