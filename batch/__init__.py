"""Batch background removal: a folder, a list file or a zip in, a mirrored folder out.

    python app.py batch IN OUT [--workers N] [--ray local|auto|ADDRESS] [options]

``batch.runner.run_batch`` is the job (plan, skip complete outputs, run, report);
``batch.work.Worker`` does one image wherever the work runs (this process, a
``--workers`` process, a Ray actor); ``batch.ray_runner`` puts it on Ray Data;
``batch.cli`` is the command line. Ray is optional (``requirements-ray.txt``) and
imported only for ``--ray``.
"""

from __future__ import annotations

from batch.job import BatchConfig
from batch.outcome import REPORT_NAME, Outcome, Summary
from batch.runner import BatchResult, run_batch

__all__ = ["REPORT_NAME", "BatchConfig", "BatchResult", "Outcome", "Summary", "run_batch"]
