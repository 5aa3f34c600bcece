"""The server's side of the handshake: TLS if configured, challenge, check the hello, prove, or refuse.

On a TLS listener a caller claiming the peer or operator role must also have presented a
certificate naming that role (see `_tls`); on a plain listener a caller that opens with a
TLS ClientHello is told, in one log line, that it reached a plain server.
"""

from __future__ import annotations

import trio

from diskv_trio import _entropy
from diskv_trio._ratelog import RateLimitedLog

from . import _auth
from ._credentials import Credentials
from ._errors import ProtocolError
from ._limits import HELLO_FRAME_BYTES_MAX, HELLO_TIMEOUT_S, NONCE_BYTES, PROTOCOL_VERSION
from ._protocol import (
    CODE_AUTH,
    CODE_CLUSTER,
    CODE_PROTOCOL,
    CODE_VERSION,
    FrameDecoder,
    Identity,
    challenge_message,
    encode_frame,
    hello_reply_message,
    parse_hello,
    refusal_message,
)
from ._streams import receive_message
from ._tls import CODE_TLS, accept_tls, certificate_role, looks_like_tls, tls_failure

CERTIFIED_ROLES = frozenset({"peer", "operator"})
"""Roles that must present a certificate naming them on a TLS listener."""


class Refused(Exception):
    """The hello was refused; `code` and `text` went to the caller."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(f"{code}: {text}")
        self.code = code
        self.text = text


async def server_handshake(
    stream: trio.abc.Stream,
    identity: Identity,
    credentials: Credentials | None,
    refusals: RateLimitedLog,
) -> tuple[trio.abc.Stream, Identity | None]:
    """Run the handshake; return the stream to use (TLS or plain) and the caller's
    authenticated identity, or None if it was refused, timed out or went away (each
    refusal is sent to the caller when it can read it, and logged)."""
    tls = credentials.tls if credentials is not None else None
    if tls is None:
        return stream, await _hello(stream, identity, credentials, refusals, tls=False)
    try:
        with trio.fail_after(HELLO_TIMEOUT_S):
            secured = await accept_tls(stream, tls)
    except trio.TooSlowError:
        refusals.warning("connection closed: TLS handshake not done within %s s", HELLO_TIMEOUT_S)
        return stream, None
    except trio.BrokenResourceError as exc:
        failure = tls_failure(exc, "caller")
        if failure is not None:
            refusals.warning("TLS handshake refused: %s", failure)
        return stream, None
    if isinstance(secured, str):
        await _refuse(stream, refusals, CODE_TLS, secured)
        return stream, None
    if secured is None:
        return stream, None
    return secured, await _hello(secured, identity, credentials, refusals, tls=True)


async def _hello(
    stream: trio.abc.Stream,
    identity: Identity,
    credentials: Credentials | None,
    refusals: RateLimitedLog,
    *,
    tls: bool,
) -> Identity | None:
    server_nonce = _entropy.token_bytes(NONCE_BYTES)
    await stream.send_all(encode_frame(challenge_message(server_nonce)))
    decoder = FrameDecoder(HELLO_FRAME_BYTES_MAX, items_max=64)
    try:
        with trio.move_on_after(HELLO_TIMEOUT_S) as scope:
            first = await stream.receive_some(HELLO_FRAME_BYTES_MAX)
            if not tls and looks_like_tls(first):
                raise Refused(CODE_TLS, "this server speaks plain text: the caller opened with TLS")
            decoder.feed(first)
            message = await receive_message(stream, decoder) if first else None
        if scope.cancelled_caught:
            refusals.warning("connection closed: no hello within %s s", HELLO_TIMEOUT_S)
            return None
        if message is None:
            return None
        caller, proof = _check_hello(message, identity, credentials, server_nonce)
        if tls and caller.role in CERTIFIED_ROLES and certificate_role(stream) != caller.role:
            raise Refused(
                CODE_AUTH,
                f"{caller.role} {caller.node_id!r} must present a certificate of this cluster's"
                f" CA naming the {caller.role} role (OU={caller.role})",
            )
    except ProtocolError as exc:
        await _refuse(stream, refusals, CODE_PROTOCOL, f"bad hello: {exc}")
        return None
    except Refused as exc:
        await _refuse(stream, refusals, exc.code, exc.text)
        return None
    await stream.send_all(encode_frame(hello_reply_message(identity, proof)))
    return caller


def _check_hello(
    message: dict, identity: Identity, credentials: Credentials | None, server_nonce: bytes
) -> tuple[Identity, bytes | None]:
    """The caller's identity and our proof for it; `Refused` or `ProtocolError` otherwise."""
    hello = parse_hello(message)
    if hello.version != PROTOCOL_VERSION:
        raise Refused(
            CODE_VERSION,
            f"protocol version {hello.version} not supported, this server speaks {PROTOCOL_VERSION}",
        )
    caller = hello.identity
    if caller.cluster != identity.cluster:
        raise Refused(
            CODE_CLUSTER,
            f"cluster {caller.cluster!r} is not this server's cluster {identity.cluster!r}",
        )
    if credentials is None:
        return caller, None  # an open server: roles are as claimed (see RpcServer)
    key = credentials.key(caller.role)
    signed = _auth.transcript(caller.cluster, caller.role, caller.node_id, server_nonce, hello.nonce)
    if key is None or not _auth.verify(key, _auth.CALLER_SIDE, signed, hello.proof):
        raise Refused(
            CODE_AUTH,
            f"{caller.role} {caller.node_id!r} did not prove it holds this cluster's"
            f" {caller.role} key",
        )
    return caller, _auth.prove(key, _auth.SERVER_SIDE, signed)


async def _refuse(stream: trio.abc.Stream, refusals: RateLimitedLog, code: str, text: str) -> None:
    refusals.warning("hello refused (%s): %s", code, text)
    await stream.send_all(encode_frame(refusal_message(code, text)))
