"""The channels out of the app: a webhook or an HTTP SMS gateway, both ``POST URL`` with a signed
JSON body; and the SSRF guard both go through when a target is added and before every request.

The guard resolves the host and refuses any address that is not public (loopback, private,
link-local, shared, multicast, reserved …) unless it is inside SANDTABLE_NOTIFY_ALLOWED_NETWORKS;
the request then goes to the very address that was checked (the connection is pinned to it, the
name still sent as Host and used for TLS), so a DNS answer that changes between check and request
cannot redirect it. Redirects are never followed: a 3xx is a failure like a 500.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3

from core.errors import Forbidden, InvalidInput

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
USER_AGENT = "Sandtable-Notify/1"


def sign(secret: str, body: bytes) -> str:
    """``sha256=HEX``: HMAC-SHA256 of the raw body with the target's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Destination:
    """A checked URL: where to connect (the checked address) and what to ask for."""

    scheme: str
    host: str
    address: str
    port: int
    path: str


def _is_public(address: Address) -> bool:
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    if mapped is not None:
        return _is_public(mapped)
    return address.is_global and not address.is_multicast


def parse_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path?query) of an http(s) URL, or InvalidInput naming the field."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise InvalidInput(key="notify.error.url", url=url) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise InvalidInput(key="notify.error.url", url=url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path


def check_destination(url: str, allowed: tuple[Network, ...]) -> Destination:
    """Resolve the URL's host and check every address it has; the first is the one to connect to."""
    scheme, host, port, path = parse_url(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise InvalidInput(key="notify.error.resolve", host=host) from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for address in addresses:
        if not _is_public(address) and not any(address in network for network in allowed):
            raise Forbidden(key="notify.error.private", host=host, address=str(address))
    return Destination(scheme, host, str(addresses[0]), port, path)


@dataclass(frozen=True)
class Outcome:
    """What one request came to: delivered (any 2xx) or not, and a short reason."""

    ok: bool
    detail: str


class Poster:
    """Sends signed POSTs, one connection pool per checked address (thread-safe)."""

    def __init__(self, *, allowed: tuple[Network, ...], timeout: float, pool_size: int) -> None:
        self.allowed = allowed
        self.timeout = urllib3.Timeout(connect=min(timeout, 5.0), read=timeout)
        self.pool_size = pool_size
        self._pools: dict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = {}
        self._lock = threading.Lock()

    def _pool(self, dest: Destination) -> urllib3.HTTPConnectionPool:
        key = (dest.scheme, dest.address, dest.port, dest.host)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                if dest.scheme == "https":
                    pool = urllib3.HTTPSConnectionPool(
                        dest.address,
                        dest.port,
                        timeout=self.timeout,
                        maxsize=self.pool_size,
                        block=False,
                        retries=False,
                        server_hostname=dest.host,
                        assert_hostname=dest.host,
                    )
                else:
                    pool = urllib3.HTTPConnectionPool(
                        dest.address,
                        dest.port,
                        timeout=self.timeout,
                        maxsize=self.pool_size,
                        block=False,
                        retries=False,
                    )
                self._pools[key] = pool
            return pool

    def post(self, url: str, body: bytes, *, secret: str, delivery: str) -> Outcome:
        """POST the body to the URL, signed; never raises."""
        try:
            dest = check_destination(url, self.allowed)
        except (InvalidInput, Forbidden) as err:
            return Outcome(False, str(err))
        host_header = dest.host if dest.port in (80, 443) else f"{dest.host}:{dest.port}"
        headers = {
            "Host": host_header,
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "X-Sandtable-Delivery": delivery,
            "X-Sandtable-Signature": sign(secret, body),
        }
        try:
            response = self._pool(dest).urlopen(
                "POST", dest.path, body=body, headers=headers, redirect=False, retries=False, preload_content=True
            )
        except urllib3.exceptions.HTTPError as err:
            return Outcome(False, _reason(err))
        if 200 <= response.status < 300:
            return Outcome(True, f"HTTP {response.status}")
        return Outcome(False, f"HTTP {response.status}")

    def close(self) -> None:
        """Close every pool."""
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()


def _reason(err: Exception) -> str:
    text = str(getattr(err, "reason", None) or err)
    if "refused" in text.lower():
        return "connection refused"
    if "timed out" in text.lower() or "timeout" in text.lower():
        return "timed out"
    return text.split(": ", 1)[-1][:200]
