"""The Gradio WebUI: ``build_ui(settings)`` builds the Blocks; ``app.py`` serves them beside the REST API."""

from base.settings import quiet_gradio

quiet_gradio()  # before Gradio is imported: no analytics (base.settings.GRADIO_ENVIRONMENT)

from ui.blocks import build_ui  # noqa: E402

__all__ = ["build_ui"]
