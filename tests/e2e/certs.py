# SPDX-License-Identifier: GPL-2.0
"""Test PKI for the /metrics endpoint: CAs, a server certificate, good, expired and foreign
client certificates, written as PEM files with python3-cryptography."""
import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = datetime.timedelta(days=1)


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)
    return str(path)


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert(subject, key, issuer, issuer_key, *, ca=False, server=False, client=False,
          not_before=None, not_after=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder()
         .subject_name(_name(subject))
         .issuer_name(_name(issuer))
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(not_before or now - DAY)
         .not_valid_after(not_after or now + 30 * DAY)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                          crl_sign=True, content_commitment=False,
                                          key_encipherment=False, data_encipherment=False,
                                          key_agreement=False, encipher_only=False,
                                          decipher_only=False), critical=True)
    if server:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                            critical=False)
    if client:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                            critical=False)
    return b.sign(issuer_key, hashes.SHA256())


class Pki:
    """Everything under @d: ca.pem, server.pem/-key.pem, client.pem/-key.pem (good),
    expired.pem/-key.pem (signed by the CA, expired), rogue.pem/-key.pem (another CA's),
    other-ca.pem, and a second server pair (server2) to swap in at reload."""

    def __init__(self, d):
        self.dir = d
        ca_key, rogue_ca_key = _key(), _key()
        ca = _cert("tapir test CA", ca_key, "tapir test CA", ca_key, ca=True)
        rogue_ca = _cert("rogue CA", rogue_ca_key, "rogue CA", rogue_ca_key, ca=True)
        pem = serialization.Encoding.PEM
        self.ca = _write(d / "ca.pem", ca.public_bytes(pem))
        self.other_ca = _write(d / "other-ca.pem", rogue_ca.public_bytes(pem))
        now = datetime.datetime.now(datetime.timezone.utc)
        for name, issuer, issuer_key, kw in (
                ("server", "tapir test CA", ca_key, {"server": True}),
                ("server2", "tapir test CA", ca_key, {"server": True}),
                ("client", "tapir test CA", ca_key, {"client": True}),
                ("expired", "tapir test CA", ca_key,
                 {"client": True, "not_before": now - 60 * DAY, "not_after": now - DAY}),
                ("rogue", "rogue CA", rogue_ca_key, {"client": True})):
            key = _key()
            cert = _cert(name, key, issuer, issuer_key, **kw)
            setattr(self, name, _write(d / f"{name}.pem", cert.public_bytes(pem)))
            setattr(self, f"{name}_key", _write(d / f"{name}-key.pem", _pem_key(key)))
