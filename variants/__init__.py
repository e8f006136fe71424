"""Model variants built here from the fp32 weights: ``python -m models build NAME``.

A tool above the engine: it applies the recipes of ``models.recipes`` to a base
model's weights (``variants.convert`` for data-free rewrites, ``variants.int8`` for
int8 quantisation), measures the result against its base (``variants.gate``) and
installs it with its sidecar (``variants.builder``). The service never builds: a
request for a missing variant fails with the build command.
"""

from variants.builder import BuildError, BuildResult, GateFailed, build

__all__ = ["BuildError", "BuildResult", "GateFailed", "build"]
