"""Test PKI: private files, usable certificates, SANs for loopback, no overwriting."""

import ipaddress
import stat

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from qkdnode.pki import init_link_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    out = tmp_path_factory.mktemp("p") / "pki"
    return init_link_pki(out, "l", {"KME_A": ["SAE_A"], "KME_B": ["SAE_B", "SAE_C"]})


def load(path):
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_directory_is_0700_and_private_keys_0600(pki):
    assert stat.S_IMODE(pki.ca_cert.parent.stat().st_mode) == 0o700
    for _, key in [(None, pki.ca_key), *pki.kmes.values(), *pki.saes.values()]:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_kme_certificates_serve_localhost_and_loopback(pki):
    cert = load(pki.kmes["KME_B"][0])
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    assert ExtendedKeyUsageOID.SERVER_AUTH in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value


def test_sae_certificates_carry_the_sae_id_and_are_signed_by_the_ca(pki):
    ca = load(pki.ca_cert)
    for sae, (cert_path, _) in pki.saes.items():
        cert = load(cert_path)
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == sae
        cert.verify_directly_issued_by(ca)
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_existing_files_are_never_overwritten(pki):
    before = pki.ca_key.read_bytes()
    with pytest.raises(FileExistsError):
        init_link_pki(pki.ca_cert.parent, "l", {"KME_A": ["SAE_A"], "KME_B": ["SAE_B"]})
    assert pki.ca_key.read_bytes() == before


def test_ids_must_be_distinct(tmp_path):
    with pytest.raises(ValueError):
        init_link_pki(tmp_path / "x", "l", {"KME_A": ["SAE_A"], "KME_B": ["SAE_A"]})
