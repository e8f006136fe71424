"""The WebUI's readout names the Ray Serve replica and node that ran a removal (``--ray-address``)."""

from __future__ import annotations

from typing import Any

from ui import readout

REPORT: dict[str, Any] = {
    "model": "u2net",
    "provider": "cpu",
    "width": 480,
    "height": 360,
    "format": "png",
    "bytes": 1024,
    "timings_ms": {"inference": 300.0, "total": 400.0},
    "batch": 1,
}


def test_the_readout_names_the_replica_and_node() -> None:
    html = readout.last_request_html({**REPORT, "ran_on": {"replica": "r1x", "node": "abcdef0123456789"}})
    assert "replica <code>r1x</code>" in html
    assert "node <code>abcdef012345</code>" in html


def test_a_local_removal_names_none() -> None:
    assert "Ray cluster" not in readout.last_request_html(REPORT)
