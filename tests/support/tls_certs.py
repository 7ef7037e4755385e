"""Certificates made in the test (Python `cryptography`): a CA, server and client
certificates signed by it, self-signed and expired ones, written as PEM files; and a TLS
client to look at what the gateway's listeners negotiate."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)


@dataclass
class Issued:
    cert: Path
    key: Path
    certificate: x509.Certificate

    @property
    def common_name(self) -> str:
        return self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(directory: Path, stem: str, cert: x509.Certificate, key) -> Issued:
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Issued(cert_path, key_path, cert)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _leaf(
    directory: Path,
    stem: str,
    common_name: str,
    alt_names: list[x509.GeneralName],
    issuer: Ca | None,
    *,
    client: bool,
    valid: tuple[datetime.datetime, datetime.datetime],
) -> Issued:
    """A non-CA certificate signed by `issuer`, or self-signed without one."""
    key = _key()
    if issuer is None:
        issuer_name, signing_key = _name(common_name), key
    else:
        issuer_name, signing_key = issuer.certificate.subject, issuer.key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return _write(directory, stem, builder.sign(signing_key, hashes.SHA256()), key)


class Ca:
    def __init__(self, directory: Path, name: str = "pygate test CA") -> None:
        self.directory = directory
        self.key = _key()
        subject = _name(name)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - DAY)
            .not_valid_after(NOW + 30 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True,
                    content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )  # fmt: skip
        self.cert = _write(directory, name.replace(" ", "-"), self.certificate, self.key).cert

    def issue(
        self,
        stem: str,
        common_name: str,
        dns_names: list[str] = (),  # type: ignore[assignment]
        *,
        client: bool = False,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
    ) -> Issued:
        """A certificate in this CA's directory; a server one is valid for 127.0.0.1 too."""
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        if not client:
            names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        valid = (not_before or NOW - DAY, not_after or NOW + 10 * DAY)
        return _leaf(self.directory, stem, common_name, names, self, client=client, valid=valid)


def issue(
    directory: Path,
    names: list[str],
    ca: Ca | None = None,
    *,
    expired: bool = False,
    stem: str = "leaf",
) -> Issued:
    """A server certificate for `names` (DNS names or IP addresses; the first is the
    subject), signed by `ca`, or self-signed without one."""
    alt: list[x509.GeneralName] = []
    for n in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alt.append(x509.DNSName(n))
    valid = (NOW - 30 * DAY, NOW - DAY) if expired else (NOW - DAY, NOW + 30 * DAY)
    return _leaf(directory, stem, names[0], alt, ca, client=False, valid=valid)


@dataclass
class TlsAnswer:
    """One request over TLS: the response and what the handshake negotiated."""

    status: int
    headers: dict[str, str]
    body: bytes
    version: str | None
    alpn: str | None
    server_cn: str


def client_context(ca: Path | None = None, **options) -> ssl.SSLContext:
    """A client context trusting `ca` (None: verifying nothing, to look at the cert).
    `options`: minimum_version / maximum_version (ssl.TLSVersion), alpn (list)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(ca)
    for name in ("minimum_version", "maximum_version"):
        if name in options:
            setattr(ctx, name, options[name])
    ctx.set_alpn_protocols(options.get("alpn", ["http/1.1"]))
    if "client" in options:
        client: Issued = options["client"]
        ctx.load_cert_chain(client.cert, client.key)
    return ctx


def tls_get(
    port: int, sni: str | None, path: str, ctx: ssl.SSLContext, host: str | None = None
) -> TlsAnswer:
    """GET `path` over TLS to 127.0.0.1:port with `sni` (None: no SNI sent)."""
    from .client import read_response

    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni) as tls:
            der = tls.getpeercert(binary_form=True)
            cert = x509.load_der_x509_certificate(der)
            cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
            request = f"GET {path} HTTP/1.1\r\nHost: {host or sni or '127.0.0.1'}\r\n"
            tls.sendall(f"{request}Connection: close\r\n\r\n".encode())
            resp = read_response(tls)
            assert resp is not None, "the gateway closed without answering"
            return TlsAnswer(
                resp.status, resp.headers, resp.body, tls.version(),
                tls.selected_alpn_protocol(), str(cn),
            )  # fmt: skip
