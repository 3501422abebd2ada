"""Test PKI for a link's key delivery API: one CA, KME server certificates, SAE client certificates.

For trials and tests, not production: the CA key sits next to the certificates it signed.
Keys are ECDSA P-256, signatures SHA-256; private keys are written mode 0600 (PKCS#8 PEM,
unencrypted), into a 0700 directory. Subject CN = the KME or SAE ID; the key delivery API
takes the caller's SAE ID from the CN of its client certificate.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from qkdnode.keystore.durable import atomic_write, ensure_private_dir

DEFAULT_DNS = ("localhost",)
DEFAULT_IPS = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key (hidden from repr)."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey = field(repr=False)

    def __repr__(self) -> str:
        return f"Issued(subject={self.cert.subject.rfc4514_string()!r}, key=<hidden>)"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def create_ca(common_name: str, days: int = 365) -> Issued:
    """A self-signed CA certificate (path length 0) valid for `days` days."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True,
                          crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def issue(
    ca: Issued,
    common_name: str,
    *,
    server: bool,
    client: bool,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    days: int = 365,
) -> Issued:
    """An end-entity certificate signed by `ca` with serverAuth and/or clientAuth usage and SANs."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    )
    if not usages:
        raise ValueError("a certificate needs server and/or client usage")
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=True, key_cert_sign=False,
                          crl_sign=False, encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def write_issued(issued: Issued, cert_path: Path, key_path: Path) -> None:
    """Write the certificate (PEM) and its private key (PKCS#8 PEM, mode 0600), atomically."""
    atomic_write(cert_path, issued.cert.public_bytes(serialization.Encoding.PEM))
    atomic_write(
        key_path,
        issued.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()),
    )


@dataclass(frozen=True)
class LinkPki:
    """Paths of the files written by `init_link_pki` (ID -> (cert, key))."""

    ca_cert: Path
    ca_key: Path
    kmes: dict[str, tuple[Path, Path]]
    saes: dict[str, tuple[Path, Path]]


def init_link_pki(
    out_dir: Path,
    link_id: str,
    saes_by_kme: dict[str, Sequence[str]],
    *,
    dns_names: Sequence[str] = DEFAULT_DNS,
    ip_addresses: Sequence[str] = DEFAULT_IPS,
    days: int = 365,
) -> LinkPki:
    """Create `<out_dir>/ca.{crt,key}`, `<KME>.{crt,key}` (server+client, with SANs) and
    `<SAE>.{crt,key}` (client) for every KME and SAE. Refuses to overwrite existing files."""
    ids = list(saes_by_kme) + [s for saes in saes_by_kme.values() for s in saes]
    if len(set(ids)) != len(ids) or "ca" in ids:
        raise ValueError("KME and SAE IDs must be distinct and not 'ca'")
    names = ["ca"] + ids
    ensure_private_dir(out_dir, create=True)
    existing = [str(out_dir / f"{n}{ext}") for n in names for ext in (".crt", ".key")
                if (out_dir / f"{n}{ext}").exists()]
    if existing:
        raise FileExistsError(f"refusing to overwrite {existing[0]}")
    ca = create_ca(f"qkdnode test CA for link {link_id}", days)
    write_issued(ca, out_dir / "ca.crt", out_dir / "ca.key")
    kmes: dict[str, tuple[Path, Path]] = {}
    saes: dict[str, tuple[Path, Path]] = {}
    for kme, attached in saes_by_kme.items():
        cert = issue(ca, kme, server=True, client=True, dns_names=dns_names, ip_addresses=ip_addresses,
                     days=days)
        kmes[kme] = (out_dir / f"{kme}.crt", out_dir / f"{kme}.key")
        write_issued(cert, *kmes[kme])
        for sae in attached:
            saes[sae] = (out_dir / f"{sae}.crt", out_dir / f"{sae}.key")
            write_issued(issue(ca, sae, server=False, client=True, days=days), *saes[sae])
    return LinkPki(out_dir / "ca.crt", out_dir / "ca.key", kmes, saes)
