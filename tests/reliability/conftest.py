"""Clients of the module's own ``isolated`` server, shared by the reliability tests.

Each test module defines ``isolated`` (its server, launched with the flags it needs);
these fixtures connect to whichever one the requesting module has.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from gradio_client import Client

from tests.reliability.common import IsolatedServer


@pytest.fixture(scope="module")
def http(isolated: IsolatedServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=isolated.url, timeout=300) as client:
        yield client


@pytest.fixture(scope="module")
def client(isolated: IsolatedServer, tmp_path_factory: pytest.TempPathFactory) -> Client:
    return Client(
        isolated.url, verbose=False, download_files=tmp_path_factory.mktemp("downloads"), analytics_enabled=False
    )
