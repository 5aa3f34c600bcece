"""The handshake's proofs: HMAC-SHA256 over both sides' nonces, never the secret itself.

The server speaks first with a random challenge; the caller answers with its hello, its own
nonce and a proof made with its role's key; the server checks it and answers with a proof of
its own, so each side knows the other holds the key. Both proofs cover the cluster, the
claimed role and id and both nonces, and differ by a side label, so none can be replayed on
another connection or reflected back.
"""

from __future__ import annotations

import hashlib
import hmac

import cbor2

from ._limits import PROTOCOL_VERSION

CALLER_SIDE = b"caller"
SERVER_SIDE = b"server"


def transcript(
    cluster: str, role: str, node_id: str, server_nonce: bytes, caller_nonce: bytes
) -> bytes:
    """The bytes both proofs sign: canonical CBOR, so field boundaries cannot be shifted."""
    return cbor2.dumps(
        ["diskv-hello", PROTOCOL_VERSION, cluster, role, node_id, server_nonce, caller_nonce],
        canonical=True,
    )


def prove(key: bytes, side: bytes, signed: bytes) -> bytes:
    return hmac.new(key, side + b"\0" + signed, hashlib.sha256).digest()


def verify(key: bytes, side: bytes, signed: bytes, proof: bytes | None) -> bool:
    """Constant-time check of a proof; a missing proof never verifies."""
    if proof is None:
        return False
    return hmac.compare_digest(prove(key, side, signed), proof)
