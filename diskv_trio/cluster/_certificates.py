"""A local certificate authority for `diskv cluster up --tls`, made with `cryptography`.

Layout of the TLS directory (0700, every file 0600), in the format `diskv_trio.net.load_tls`
reads:

- ``ca.pem`` / ``ca.key``: the cluster's CA. The key signs certificates for servers added
  later; nothing else reads it (keep it off servers outside a local setup).
- ``cert.pem`` / ``key.pem``: the operator's certificate (OU=operator), for the bundled tools
  and the supervisor's own listener, so it may serve too.
- ``servers/NAME/{ca.pem,cert.pem,key.pem}``: one directory per server (OU=peer), given to
  it with ``--tls-dir``.

Every certificate names ``localhost``, 127.0.0.1 and ::1 (the local cluster's addresses; a
Unix socket is checked as ``localhost``). Existing files are kept, so re-running `cluster up
--tls` keeps the cluster's CA and only adds what is missing.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from diskv_trio._private_files import make_private_directory
from diskv_trio.net import CA_FILE_NAME, CERT_FILE_NAME, KEY_FILE_NAME

CA_KEY_FILE_NAME = "ca.key"
SERVERS_DIR_NAME = "servers"
OPERATOR_NAME = "operator"
VALID_DAYS = 3650
"""A local test cluster's certificates should not expire under it; rotate by deleting the dir."""

LOCAL_NAMES = ("localhost",)
LOCAL_ADDRESSES = ("127.0.0.1", "::1")


def create_tls_files(directory: Path, server_names: Iterable[str]) -> None:
    """Create the CA, the operator's certificate and one per server, keeping existing ones."""
    make_private_directory(directory)
    ca_cert_path, ca_key_path = directory / CA_FILE_NAME, directory / CA_KEY_FILE_NAME
    if not ca_key_path.exists():
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _ca_certificate(ca_key)
        _write_private(ca_key_path, _key_bytes(ca_key))
        _write_private(ca_cert_path, ca_cert.public_bytes(serialization.Encoding.PEM))
    ca_key_loaded = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    assert isinstance(ca_key_loaded, ec.EllipticCurvePrivateKey)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    _issue(directory, OPERATOR_NAME, OPERATOR_NAME, ca_key_loaded, ca_cert)
    servers = directory / SERVERS_DIR_NAME
    make_private_directory(servers)
    for name in server_names:
        server_dir = servers / name
        make_private_directory(server_dir)
        if not (server_dir / CA_FILE_NAME).exists():
            _write_private(
                server_dir / CA_FILE_NAME, ca_cert.public_bytes(serialization.Encoding.PEM)
            )
        _issue(server_dir, name, "peer", ca_key_loaded, ca_cert)


def server_tls_dir(directory: Path, name: str) -> Path:
    """The directory `create_tls_files` made for server `name`."""
    return directory / SERVERS_DIR_NAME / name


def _issue(
    directory: Path,
    name: str,
    role: str,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
) -> None:
    """Write ``cert.pem`` + ``key.pem`` for `name` (OU=`role`), unless both exist."""
    cert_path, key_path = directory / CERT_FILE_NAME, directory / KEY_FILE_NAME
    if cert_path.exists() and key_path.exists():
        return
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
        ]
    )
    alternative_names: list[x509.GeneralName] = [x509.DNSName(n) for n in LOCAL_NAMES]
    alternative_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in LOCAL_ADDRESSES]
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    for path in (cert_path, key_path):
        path.unlink(missing_ok=True)  # one without the other is useless: make both anew
    _write_private(key_path, _key_bytes(key))
    _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def _ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "diskv local CA")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _key_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write a new file readable by its owner alone, durably."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
