"""The Gradio WebUI: ``build_ui(settings)`` builds the Blocks; ``ui.server`` serves them with the REST API."""

from ui.blocks import build_ui

__all__ = ["build_ui"]
