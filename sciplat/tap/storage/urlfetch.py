"""Fetching uploaded tables from http(s) URLs (DALI UPLOAD), only from allowed addresses.

A URL given in ``UPLOAD=t,https://...`` makes this service send a request on the caller's
behalf, so every address its host resolves to must be allowed by ``upload_url_networks``
("public": globally routable addresses only, which leaves out loopback, where the hub's API
and the other platform services listen, private and link-local networks, cloud metadata
endpoints and cluster IPs). The request then goes to the checked address itself (the Host
header and TLS SNI/certificate check keep the name), so a DNS answer that changes between the
check and the connection (DNS rebinding) cannot redirect it. Redirects are not followed (their
target would escape the check), no proxy from the environment is used, the caller's
credentials are never forwarded, and the body is bounded in bytes and time.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Sequence

import httpx

from sciplat.tap.errors import TapParameterError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]


def parse_networks(entries: Sequence[str]) -> tuple[bool, tuple[Network, ...]]:
    """``("public", "10.1.2.0/24", ...)`` → (public allowed, the networks).

    Raises:
        ValueError: an entry that is neither ``public`` nor a network in CIDR notation.
    """
    public = False
    networks: list[Network] = []
    for entry in entries:
        if entry.strip().lower() == "public":
            public = True
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(
                f"upload_url_networks: '{entry}' is neither 'public' nor a network such as "
                "192.0.2.0/24 or 2001:db8::/32"
            ) from exc
    return public, tuple(networks)


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class UrlFetcher:
    """GETs a table from an http(s) URL whose host resolves only to allowed addresses."""

    def __init__(
        self,
        networks: Sequence[str],
        max_bytes: int,
        timeout: float,
        resolver: Resolver = _resolve,
    ) -> None:
        self.public, self.networks = parse_networks(networks)
        self.max_bytes = max_bytes
        self.timeout = timeout
        self._resolve = resolver

    @property
    def enabled(self) -> bool:
        """Whether any address at all may be fetched from."""
        return self.public or bool(self.networks)

    def allowed(self, address: str) -> bool:
        """Whether ``address`` (an IP address as text) may be fetched from."""
        ip: Address = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in net for net in self.networks):
            return True
        return self.public and ip.is_global and not ip.is_multicast

    def fetch(self, name: str, url: str) -> bytes:
        """The body of ``url``.

        Raises:
            TapParameterError: not an http(s) URL, a host that does not resolve or resolves to
                an address ``upload_url_networks`` does not allow, a failed or redirected
                request, a body larger than ``max_bytes`` or slower than ``timeout``.
        """
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise TapParameterError(f"UPLOAD {name}: '{url}' is not a valid URL ({exc})") from exc
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise TapParameterError(f"UPLOAD {name}: '{url}' is not an http(s) URL")
        inline = f"send the VOTable inline instead (UPLOAD={name},param:<part name>)"
        if not self.enabled:
            raise TapParameterError(
                f"UPLOAD {name}: {url} cannot be fetched by this service (it fetches no URLs: "
                "upload_url_networks is empty); " + inline
            )
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            addresses = self._resolve(parsed.host, port)
        except OSError as exc:
            raise TapParameterError(
                f"UPLOAD {name}: cannot resolve host '{parsed.host}' ({exc})"
            ) from exc
        refused = [a for a in addresses if not self.allowed(a)]
        if refused or not addresses:
            raise TapParameterError(
                f"UPLOAD {name}: {url} cannot be fetched by this service: '{parsed.host}' is "
                f"{', '.join(refused) or 'no address'} (loopback, private and link-local "
                "addresses are refused unless listed in upload_url_networks); " + inline
            )
        return self._get(name, parsed, addresses[0])

    def _get(self, name: str, url: httpx.URL, address: str) -> bytes:
        host_header = url.netloc.decode("ascii").rsplit("@", 1)[-1]
        target = url.copy_with(host=address)
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        deadline = time.monotonic() + self.timeout
        body = bytearray()
        try:
            # trust_env=False: an HTTP(S)_PROXY from the environment would fetch any address
            with httpx.Client(timeout=self.timeout, follow_redirects=False,
                              trust_env=False) as client, client.stream(
                "GET", target, headers={"Host": host_header}, extensions=extensions
            ) as response:  # fmt: skip
                if response.is_redirect:
                    raise TapParameterError(
                        f"UPLOAD {name}: {url} redirects to "
                        f"{response.headers.get('location', '?')}; give UPLOAD the final URL"
                    )
                if response.status_code != 200:
                    raise TapParameterError(
                        f"UPLOAD {name}: {url} answered HTTP {response.status_code}"
                    )
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise TapParameterError(
                            f"UPLOAD {name}: {url} is larger than {self.max_bytes} bytes, this "
                            "service's limit (max_upload_bytes)"
                        )
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("the whole body took too long")
        except httpx.HTTPError as exc:
            raise TapParameterError(
                f"UPLOAD {name}: cannot fetch {url} within {self.timeout:g} s "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        return bytes(body)
