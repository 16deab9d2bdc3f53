"""UPLOAD by http(s) URL: fetched only from allowed addresses, from the address that was
checked, without redirects, bounded in size; advertised in the capabilities."""

from __future__ import annotations

import io
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from astropy.io.votable import parse

from sciplat.tap.config import TapConfig
from sciplat.tap.errors import TapParameterError
from sciplat.tap.services.upload import UploadService
from sciplat.tap.storage.urlfetch import UrlFetcher, parse_networks
from sciplat.tap.wiring import TapServices
from tests.tap.test_upload import JOIN, _client, _status, _sync, targets, votable_bytes

Make = Callable[..., Awaitable[TapServices]]


@dataclass
class Files:
    """What the local file server answers, and the Host headers it was asked with."""

    port: int
    hosts: list[str] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture(scope="module")
def files() -> Iterator[Files]:
    """An HTTP server on loopback: /t.xml (a VOTable), /moved (302), /big, anything else 404."""
    table = votable_bytes(targets())
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Host", ""))
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", "/t.xml")
                self.end_headers()
                return
            body = {"/t.xml": table, "/big": b"x" * 200_000}.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Files(server.server_address[1], seen)
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def _fetcher(*networks: str, resolve: dict[str, list[str]] | None = None) -> UrlFetcher:
    if resolve is None:
        return UrlFetcher(networks, max_bytes=100_000, timeout=10)
    return UrlFetcher(networks, 100_000, 10, resolver=lambda host, port: resolve[host])


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.1", False), ("::1", False), ("10.1.2.3", False), ("192.168.0.5", False),
        ("172.16.0.1", False), ("169.254.169.254", False), ("100.64.0.1", False),
        ("fd00::1", False), ("fe80::1", False), ("::ffff:127.0.0.1", False),
        ("0.0.0.0", False), ("224.0.0.1", False),  # noqa: S104 - an address to check
        ("8.8.8.8", True), ("2001:4860:4860::8888", True), ("::ffff:8.8.8.8", True),
    ],
)  # fmt: skip
def test_by_default_only_public_addresses_are_fetched_from(address: str, allowed: bool) -> None:
    assert UploadService(TapConfig()).fetcher.allowed(address) is allowed


def test_listed_networks_are_allowed_too() -> None:
    fetcher = _fetcher("public", "10.20.0.0/16")
    assert fetcher.allowed("10.20.3.4")
    assert not fetcher.allowed("10.21.3.4")
    assert not _fetcher("10.20.0.0/16").allowed("8.8.8.8")  # no "public": only the list


def test_a_bad_network_entry_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match="'intranet' is neither 'public' nor a network"):
        parse_networks(["public", "intranet"])


def test_the_hub_on_loopback_is_never_asked_by_default(files: Files) -> None:
    before = len(files.hosts)
    with pytest.raises(TapParameterError, match="cannot be fetched by this service") as err:
        UploadService(TapConfig()).tables(f"t,{files.url('/t.xml')}", {})
    assert "127.0.0.1" in str(err.value)
    assert "upload_url_networks" in str(err.value)
    assert "param:" in str(err.value)  # says how to send the table instead
    assert len(files.hosts) == before


def test_a_host_with_any_refused_address_is_refused(files: Files) -> None:
    fetcher = _fetcher("public", resolve={"mixed.example": ["8.8.8.8", "127.0.0.1"]})
    with pytest.raises(TapParameterError, match=r"is 127\.0\.0\.1 \(loopback"):
        fetcher.fetch("t", files.url("/t.xml", "mixed.example"))


def test_the_checked_address_is_the_one_connected_to(files: Files) -> None:
    """The name is resolved once: the request goes to that address with the name as Host, so
    a second, different DNS answer (rebinding) cannot send it elsewhere."""
    answers = iter([["127.0.0.1"], ["192.0.2.1"]])
    fetcher = UrlFetcher(["127.0.0.0/8"], 100_000, 10, resolver=lambda h, p: next(answers))
    body = fetcher.fetch("t", files.url("/t.xml", "tables.example"))
    assert body == votable_bytes(targets())
    assert files.hosts[-1] == f"tables.example:{files.port}"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/moved", r"redirects to /t\.xml; give UPLOAD the final URL"),
        ("/missing", "answered HTTP 404"),
        ("/big", r"larger than 100000 bytes.*max_upload_bytes"),
    ],
)
def test_fetch_failures_are_explained(files: Files, path: str, message: str) -> None:
    with pytest.raises(TapParameterError, match=message):
        _fetcher("127.0.0.1/32").fetch("t", files.url(path))


def test_no_networks_means_no_urls(files: Files) -> None:
    with pytest.raises(TapParameterError, match="upload_url_networks is empty"):
        _fetcher().fetch("t", files.url("/t.xml"))


def test_an_unresolvable_host_is_explained() -> None:
    def fail(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    fetcher = UrlFetcher(["public"], 1000, 5, resolver=fail)
    with pytest.raises(TapParameterError, match=r"cannot resolve host 'nowhere\.invalid'"):
        fetcher.fetch("t", "https://nowhere.invalid/t.xml")


async def test_join_with_a_table_fetched_from_an_allowed_network(
    started_tap: Make, files: Files
) -> None:
    services = await started_tap(upload_url_networks=("127.0.0.1/32",))
    async for client in _client(services):
        r = await _sync(client, JOIN, f"targets,{files.url('/t.xml')}", {})
        assert _status(r.content)[0] == "OK", r.text
        rows = parse(io.BytesIO(r.content)).get_first_table().to_table()
    assert [(str(n), int(h)) for n, h in zip(rows["name"], rows["hip"], strict=True)] == [
        ("Maia", 17573), ("Alcyone", 17702)
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("networks", "methods"),
    [(("public",), ["inline", "http", "https"]), ((), ["inline"])],
)
async def test_capabilities_declare_the_url_methods_when_urls_are_fetched(
    started_tap: Make, networks: tuple[str, ...], methods: list[str]
) -> None:
    services = await started_tap(upload_url_networks=networks)
    async for client in _client(services):
        text = (await client.get("/api/tap/capabilities")).text
    declared = [
        m for m in ("inline", "http", "https", "ftp")
        if f'<uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-{m}"/>' in text
    ]  # fmt: skip
    assert declared == methods


def test_https_goes_to_the_checked_address_with_the_name_for_tls() -> None:
    """SNI and the certificate check use the URL's name while the connection goes to the
    address that was checked; nothing but Host is added (no caller credentials)."""
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, content=votable_bytes(targets()))

    fetcher = UrlFetcher(["public"], 100_000, 5, resolver=lambda h, p: ["93.184.215.14"])
    real = httpx.Client

    def client(**kwargs: object) -> httpx.Client:
        return real(transport=httpx.MockTransport(answer), **kwargs)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(httpx, "Client", client)
        assert fetcher.fetch("t", "https://data.example.org/t.xml") == votable_bytes(targets())
    assert sent[0].url.host == "93.184.215.14"
    assert sent[0].url.scheme == "https"
    assert sent[0].headers["host"] == "data.example.org"
    assert sent[0].extensions["sni_hostname"] == "data.example.org"
    assert "authorization" not in {k.lower() for k in sent[0].headers}
