"""TLS on the RPC layer: loading a TLS directory, calls over TLS on TCP and Unix sockets,
certificates required of peers and operators, and plain text refused clearly both ways.

Certificates come from the local CA that `cluster up --tls` makes; servers and pools run in
this process on real sockets. The silence after which a TLS listener treats a caller as plain
is shortened so the refusals arrive quickly.
"""

from __future__ import annotations

import logging
import ssl
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

import diskv_trio.net._tls as tls_module
from diskv_trio.cluster._certificates import create_tls_files, server_tls_dir
from diskv_trio.net import (
    EVERYONE,
    Credentials,
    CredentialsError,
    HandshakeError,
    Identity,
    Role,
    RpcServer,
    RpcTimeout,
    RpcUnavailable,
    TlsError,
    create_credentials,
    load_tls,
    open_rpc_pool,
    tls_for_client_context,
)

CLUSTER = "tls-cluster"
SERVER = Identity(CLUSTER, Role.PEER, "s0")
DEADLINE_S = 5.0


@pytest.fixture(scope="module")
def tls_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local CA with the operator's certificate and servers s0 and s1 (made once: keys are slow)."""
    root = tmp_path_factory.mktemp("tls") / "tls"
    create_tls_files(root, ["s0", "s1"])
    return root


@pytest.fixture
def keys(tmp_path: Path) -> Credentials:
    return create_credentials(tmp_path / "credentials")


@pytest.fixture(autouse=True)
def short_silence(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(tls_module, "PLAIN_CALLER_SILENCE_S", 0.1)
    yield


def with_tls(keys: Credentials, directory: Path | None) -> Credentials:
    return Credentials(keys.keys, tls=None if directory is None else load_tls(directory))


def client_only_dir(tls_root: Path, tmp_path: Path) -> Path:
    """A directory holding only ca.pem: what an application machine gets."""
    directory = tmp_path / "client-tls"
    directory.mkdir(mode=0o700)
    target = directory / "ca.pem"
    target.write_bytes((tls_root / "ca.pem").read_bytes())
    target.chmod(0o600)
    return directory


async def serve(
    nursery: trio.Nursery, address: str, keys: Credentials, directory: Path | None
) -> str:
    async def echo(args: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"echo": args, "role": str(context.peer_role)}

    server = RpcServer(
        address, SERVER, {"t.echo": echo}, roles=EVERYONE, credentials=with_tls(keys, directory)
    )
    return await nursery.start(server.serve)


async def call(
    address: str, keys: Credentials, directory: Path | None, role: Role = Role.CLIENT
) -> dict[str, Any]:
    async with open_rpc_pool(
        Identity(CLUSTER, role, "c"), credentials=with_tls(keys, directory)
    ) as pool:
        return await pool.call(address, "t.echo", {"n": 1}, deadline_s=DEADLINE_S)


def test_tls_files_are_private_and_load_by_role(tls_root: Path, tmp_path: Path) -> None:
    """Every directory is 0700 and every file 0600; each directory's certificate names its role."""
    for path in [tls_root, *tls_root.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path
    server = load_tls(server_tls_dir(tls_root, "s0"))
    assert server.server_context is not None
    assert server.server_context.verify_mode == ssl.CERT_OPTIONAL
    assert server.certificate_role == "peer"
    assert load_tls(tls_root).certificate_role == "operator"
    client = load_tls(client_only_dir(tls_root, tmp_path))
    assert client.server_context is None
    assert client.certificate_role is None
    assert client.client_context.check_hostname


def test_unsafe_or_incomplete_tls_dirs_are_refused(tls_root: Path, tmp_path: Path) -> None:
    """A wide key file, a certificate without its key and a missing ca.pem each get a TlsError
    (a CredentialsError, so tools report it as a bad key)."""
    assert issubclass(TlsError, CredentialsError)
    directory = tmp_path / "bad"
    directory.mkdir(mode=0o700)
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (directory / name).write_bytes((server_tls_dir(tls_root, "s1") / name).read_bytes())
        (directory / name).chmod(0o600)
    assert load_tls(directory).certificate_role == "peer"
    (directory / "key.pem").chmod(0o644)
    with pytest.raises(TlsError, match="readable by other users"):
        load_tls(directory)
    (directory / "key.pem").unlink()
    with pytest.raises(TlsError, match="both cert.pem and key.pem"):
        load_tls(directory)
    (directory / "ca.pem").unlink()
    with pytest.raises(TlsError, match="no ca.pem"):
        load_tls(directory)
    with pytest.raises(TlsError, match="does not exist"):
        load_tls(tmp_path / "absent")


@pytest.mark.parametrize("kind", ["unix", "tcp"])
async def test_client_round_trip_over_tls(
    kind: str, tls_root: Path, tmp_path: Path, keys: Credentials, nursery: trio.Nursery
) -> None:
    """A client with ca.pem alone calls a TLS server on a Unix socket and on TCP."""
    address = f"unix:{tmp_path / 's.sock'}" if kind == "unix" else "127.0.0.1:0"
    bound = await serve(nursery, address, keys, server_tls_dir(tls_root, "s0"))
    reply = await call(bound, keys, client_only_dir(tls_root, tmp_path))
    assert reply == {"echo": {"n": 1}, "role": "client"}


async def test_connect_ssl_context_round_trip(
    tls_root: Path, tmp_path: Path, keys: Credentials, nursery: trio.Nursery
) -> None:
    """An application's own SSLContext (as `connect(ssl_context=)` takes) is used as is."""
    bound = await serve(nursery, "127.0.0.1:0", keys, server_tls_dir(tls_root, "s0"))
    context = ssl.create_default_context(cafile=str(tls_root / "ca.pem"))
    credentials = Credentials(keys.keys, tls=tls_for_client_context(context))
    async with open_rpc_pool(Identity(CLUSTER, Role.CLIENT, "c"), credentials=credentials) as pool:
        reply = await pool.call(bound, "t.echo", {"n": 2}, deadline_s=DEADLINE_S)
    assert reply["echo"] == {"n": 2}


async def test_peers_and_operators_need_a_certificate_naming_their_role(
    tls_root: Path, tmp_path: Path, keys: Credentials, nursery: trio.Nursery
) -> None:
    """A peer with its key but no certificate is refused, as is an operator holding a peer's
    certificate; each with its own role's certificate gets through."""
    bound = await serve(nursery, "127.0.0.1:0", keys, server_tls_dir(tls_root, "s0"))
    with pytest.raises(HandshakeError, match="certificate") as refused:
        await call(bound, keys, client_only_dir(tls_root, tmp_path), Role.PEER)
    assert refused.value.code == "auth"
    with pytest.raises(HandshakeError, match="OU=operator"):
        await call(bound, keys, server_tls_dir(tls_root, "s1"), Role.OPERATOR)
    assert (await call(bound, keys, server_tls_dir(tls_root, "s1"), Role.PEER))["role"] == "peer"
    assert (await call(bound, keys, tls_root, Role.OPERATOR))["role"] == "operator"


async def test_plain_caller_to_tls_listener_is_refused_clearly(
    tls_root: Path,
    tmp_path: Path,
    keys: Credentials,
    nursery: trio.Nursery,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The plain caller gets a HandshakeError naming TLS; the server logs it and serves on."""
    bound = await serve(nursery, "127.0.0.1:0", keys, server_tls_dir(tls_root, "s0"))
    with caplog.at_level(logging.WARNING, logger="diskv.net"):
        with pytest.raises(HandshakeError, match="speaks TLS only") as refused:
            await call(bound, keys, None)
    assert refused.value.code == "tls"
    assert any("speaks TLS only" in r.getMessage() for r in caplog.records)
    assert (await call(bound, keys, client_only_dir(tls_root, tmp_path)))["role"] == "client"


class LogLineSeen(logging.Handler):
    """Sets `seen` when a record containing `text` is logged (same thread as the server)."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.WARNING)
        self.text = text
        self.seen = trio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()


async def test_tls_caller_to_plain_listener_is_refused_clearly(
    tls_root: Path, tmp_path: Path, keys: Credentials, nursery: trio.Nursery
) -> None:
    """The TLS caller is told the server does not speak TLS (RpcUnavailable: retried, see
    `_tls`); the server logs a TLS caller."""
    bound = await serve(nursery, f"unix:{tmp_path / 'plain.sock'}", keys, None)
    line = LogLineSeen("opened with TLS")
    logging.getLogger("diskv.net").addHandler(line)
    try:
        with pytest.raises(RpcUnavailable, match="does not speak TLS") as refused:
            await call(bound, keys, client_only_dir(tls_root, tmp_path))
        assert not isinstance(refused.value, RpcTimeout)
        with trio.fail_after(DEADLINE_S):  # the server judges the ClientHello after the caller left
            await line.seen.wait()
    finally:
        logging.getLogger("diskv.net").removeHandler(line)
    assert (await call(bound, keys, None))["role"] == "client"


async def test_server_certificate_of_another_ca_is_refused(
    tls_root: Path, tmp_path: Path, keys: Credentials, nursery: trio.Nursery
) -> None:
    """A caller trusting another CA refuses the server's certificate, naming the reason."""
    other = tmp_path / "other-ca"
    create_tls_files(other, [])
    bound = await serve(nursery, "127.0.0.1:0", keys, server_tls_dir(tls_root, "s0"))
    with pytest.raises(HandshakeError, match="certificate of .* refused") as refused:
        await call(bound, keys, other)
    assert refused.value.code == "tls"


def test_tls_server_needs_a_certificate(tls_root: Path, tmp_path: Path, keys: Credentials) -> None:
    """TLS settings with ca.pem alone can call but not serve."""
    credentials = with_tls(keys, client_only_dir(tls_root, tmp_path))
    with pytest.raises(ValueError, match="cannot serve"):
        RpcServer("127.0.0.1:0", SERVER, {}, roles=EVERYONE, credentials=credentials)
