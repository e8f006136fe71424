"""Logins at the HTTP edge: HTTP Basic credentials, and failed logins counted per client address."""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
import time
from collections import OrderedDict, deque

#: Failed logins are counted over this window.
LOGIN_WINDOW_S = 60.0
#: Addresses remembered at most (oldest forgotten first), so that the limiter's memory is bounded.
_MAX_ADDRESSES = 10_000


class LoginLimiter:
    """Failed logins per client address over a sliding minute; past ``limit``, refused until they age out."""

    def __init__(self, limit: int, window_s: float = LOGIN_WINDOW_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> float:
        """Seconds until ``address`` may try again; 0 when it may now."""
        now = time.monotonic()
        with self._lock:
            stamps = self._failures.get(address)
            if not stamps:
                return 0.0
            while stamps and stamps[0] <= now - self.window_s:
                stamps.popleft()
            if len(stamps) < self.limit:
                return 0.0
            return stamps[-self.limit] + self.window_s - now

    def failed(self, address: str) -> None:
        with self._lock:
            stamps = self._failures.pop(address, None) or deque(maxlen=self.limit)
            stamps.append(time.monotonic())
            self._failures[address] = stamps
            while len(self._failures) > _MAX_ADDRESSES:
                self._failures.popitem(last=False)


class BasicAuth:
    """HTTP Basic credentials for the REST routes and the API description (Gradio's own login covers the UI)."""

    def __init__(self, users: list[tuple[str, str]]) -> None:
        self.users = users

    def verdict(self, authorization: str) -> str:
        """``ok``, ``missing`` (no credentials: a challenge, not a failure) or ``wrong``."""
        if not self.users:
            return "ok"
        if not authorization:
            return "missing"
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return "wrong"
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "wrong"
        # compare every pair in full, so timing does not reveal which part was wrong
        match = any(secrets.compare_digest(user, u) & secrets.compare_digest(password, p) for u, p in self.users)
        return "ok" if match else "wrong"
