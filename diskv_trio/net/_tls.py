"""Optional TLS on every connection: contexts from a directory, wrapping, telling the kinds apart.

Rules kept here:

- A TLS directory holds ``ca.pem`` (the authorities that sign the other side's certificate)
  and, optionally, ``cert.pem`` + ``key.pem`` (this process's own certificate). Every file
  must be private (ours, 0600), as key files are: `diskv cluster up --tls` makes them so.
- TLS protects the bytes and proves the server's identity (its certificate names the host
  dialled, or ``localhost`` over a Unix socket); the role is still proven by the HMAC hello
  inside the TLS stream. On a TLS listener a caller claiming the peer or operator role must
  also present a certificate of the cluster's CA naming that role (its OU); a client may come
  without one, so an application machine needs only ``client.key`` and ``ca.pem``: the client
  role can only do what its key already allows, and minting a certificate per application
  instance would buy no extra protection for it.
- In our protocol the server speaks first; in TLS the caller does. So a TLS listener peeks at
  the caller's first bytes: a TLS record starts the handshake; a caller silent for
  `PLAIN_CALLER_SILENCE_S`, or one that sends anything else, is plain, and gets a plain refusal
  frame (code ``tls``) it can read: a `HandshakeError` at the caller. A TLS caller that
  receives plain bytes says the server does not speak TLS, as a retried `RpcUnavailable`
  (the one judgement made on timing must never be fatal to a caller misjudged).
"""

from __future__ import annotations

import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
from cryptography import x509
from cryptography.x509.oid import NameOID

from ._address import Address, TcpAddress
from ._credentials import CredentialsError, check_private_file
from ._errors import HandshakeError, NetError, RpcUnavailable

TLS_DIR_ENV = "DISKV_TLS_DIR"
CODE_TLS = "tls"
CA_FILE_NAME = "ca.pem"
CERT_FILE_NAME = "cert.pem"
KEY_FILE_NAME = "key.pem"
UNIX_SERVER_HOSTNAME = "localhost"
"""The name a server's certificate must carry to be reached over a Unix socket."""

PLAIN_CALLER_SILENCE_S = 0.5
"""A TLS caller sends its ClientHello as soon as it connects; a plain one waits for our
challenge. Silence this long means a plain caller, which is then refused in plain text:
well within the shortest call deadlines (2 s), so the caller hears why. A TLS caller slower
than this reads the refusal as "not TLS", which is retried (`RpcUnavailable`), so the rare
misjudged caller only loses one attempt."""

TLS_RECORD_HANDSHAKE = 0x16
"""First byte of a TLS handshake record (a ClientHello)."""

_NOT_TLS_REASONS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "RECORD_LAYER_FAILURE",
        "PACKET_LENGTH_TOO_LONG",
        "UNKNOWN_PROTOCOL",
        "HTTP_REQUEST",
        "RECORD_TOO_LARGE",
        "WRONG_SSL_VERSION",
    }
)
"""OpenSSL's reasons for a first record that is not TLS at all."""


class TlsError(CredentialsError):
    """A TLS directory or file is missing, unsafe or malformed (a kind of `CredentialsError`,
    so every tool reports it where it reports a bad key)."""


@dataclass(frozen=True)
class Tls:
    """The TLS settings of one process.

    Attributes:
        client_context: verifies servers; presents our certificate if we have one.
        server_context: serves with our certificate; None when we have none (a client).
        certificate_role: the role our certificate names (its OU), if any.
    """

    client_context: ssl.SSLContext
    server_context: ssl.SSLContext | None = None
    certificate_role: str | None = None


def load_tls(directory: Path) -> Tls:
    """Read a TLS directory (see the module docstring).

    Raises:
        TlsError: the directory or ``ca.pem`` is missing, a file is not private, only one of
            ``cert.pem`` and ``key.pem`` exists, or OpenSSL refuses a file.
    """
    if not directory.is_dir():
        raise TlsError(f"TLS directory {directory} does not exist")
    ca, cert, key = (directory / n for n in (CA_FILE_NAME, CERT_FILE_NAME, KEY_FILE_NAME))
    if not ca.exists():
        raise TlsError(f"{directory} holds no {CA_FILE_NAME}")
    if cert.exists() != key.exists():
        raise TlsError(
            f"{directory} must hold both {CERT_FILE_NAME} and {KEY_FILE_NAME}, or neither"
        )
    for path in (ca, cert, key):
        if path.exists():
            _check_private(path)
    try:
        client = client_context(ca)
        if not cert.exists():
            return Tls(client)
        client.load_cert_chain(cert, key)
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca))
        server.minimum_version = ssl.TLSVersion.TLSv1_2
        server.load_cert_chain(cert, key)
        # Ask every caller for a certificate, require it only of peers and operators (the
        # hello checks the role it names), so clients can come with ca.pem alone.
        server.verify_mode = ssl.CERT_OPTIONAL
        role = _certificate_file_role(cert)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise TlsError(f"{directory}: cannot use its certificates: {exc}") from None
    return Tls(client, server, role)


def client_context(ca: Path | None = None) -> ssl.SSLContext:
    """A context that verifies servers against `ca` (the system's authorities if None)."""
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=None if ca is None else str(ca)
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def tls_for_client_context(context: ssl.SSLContext) -> Tls:
    """Caller-only settings from a context built by the application (`connect(ssl_context=)`)."""
    return Tls(context)


def server_hostname(address: Address) -> str:
    """The name the server's certificate must carry: the host dialled, or ``localhost``."""
    return address.host if isinstance(address, TcpAddress) else UNIX_SERVER_HOSTNAME


async def wrap_client(
    stream: trio.abc.Stream, tls: Tls, address: Address
) -> trio.SSLStream[trio.abc.Stream]:
    """Run the caller's side of the TLS handshake on a fresh connection.

    Raises:
        HandshakeError: code ``tls``: the server's certificate or ours was refused (a
            configuration error, not retried silently).
        RpcUnavailable: the server answered in plain text (it does not speak TLS).
        trio.BrokenResourceError: the connection was lost during the handshake.
    """
    secured = trio.SSLStream(stream, tls.client_context, server_hostname=server_hostname(address))
    try:
        await secured.do_handshake()
    except trio.BrokenResourceError as exc:
        refusal = tls_failure(exc, str(address))
        await trio.aclose_forcefully(secured)
        if refusal is not None:
            raise refusal from None
        raise
    except BaseException:
        await trio.aclose_forcefully(secured)
        raise
    return secured


def tls_failure(exc: BaseException, where: str) -> NetError | None:
    """The error for a TLS failure behind `exc` (see `wrap_client`); None for a plain lost
    connection."""
    cause = exc.__cause__
    if isinstance(cause, ssl.SSLCertVerificationError):
        return HandshakeError(CODE_TLS, f"certificate of {where} refused: {cause.verify_message}")
    if not isinstance(cause, ssl.SSLError) or isinstance(cause, ssl.SSLEOFError):
        return None
    reason = cause.reason or type(cause).__name__
    if reason in _NOT_TLS_REASONS:
        return RpcUnavailable(
            f"{where} does not speak TLS (it answered in plain text): is it started without --tls-dir?"
        )
    return HandshakeError(CODE_TLS, f"TLS with {where} failed: {reason}")


async def accept_tls(
    stream: trio.abc.Stream, tls: Tls
) -> trio.SSLStream[trio.SocketStream] | str | None:
    """Run the listener's side of the TLS handshake.

    Returns:
        The secured stream; or a reason to refuse a plain caller (the refusal frame is sent
        by the caller of this function); or None if the caller left or failed its TLS
        handshake (nothing more can be said to it).
    """
    assert tls.server_context is not None
    assert isinstance(stream, trio.SocketStream)  # what listeners accept
    head = None
    with trio.move_on_after(PLAIN_CALLER_SILENCE_S):
        head = await stream.socket.recv(1, socket.MSG_PEEK)
    if head is None:
        return f"this server speaks TLS only: connect with TLS (--tls-dir or {TLS_DIR_ENV})"
    if not head:
        return None
    if head[0] != TLS_RECORD_HANDSHAKE:
        return "this server speaks TLS only: the caller sent plain text"
    secured = trio.SSLStream(stream, tls.server_context, server_side=True)
    await secured.do_handshake()  # BrokenResourceError: the caller's certificate or TLS failed
    return secured


def certificate_role(stream: trio.abc.Stream) -> str | None:
    """The role named (OU) by the certificate the caller presented on `stream`, if any."""
    if not isinstance(stream, trio.SSLStream):
        return None
    return _role_of(stream.getpeercert() or {})


def looks_like_tls(data: bytes | bytearray) -> bool:
    """Whether a caller's first bytes are a TLS ClientHello (TLS caller, plain listener)."""
    return len(data) >= 2 and data[0] == TLS_RECORD_HANDSHAKE and data[1] == 0x03


def _certificate_file_role(path: Path) -> str | None:
    certificate = x509.load_pem_x509_certificate(path.read_bytes())
    units = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    return str(units[0].value) if units else None


def _role_of(certificate: dict[str, Any]) -> str | None:
    for rdn in certificate.get("subject", ()):
        for name, value in rdn:
            if name == "organizationalUnitName":
                return str(value)
    return None


def _check_private(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise TlsError(f"cannot open {path}: {exc.strerror}") from None
    try:
        check_private_file(fd, path)
    except CredentialsError as exc:
        raise TlsError(str(exc)) from None
    finally:
        os.close(fd)
