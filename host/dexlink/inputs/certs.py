"""The self-signed certificate the WebXR page is served with: browsers give WebXR only to
secure contexts (HTTPS, or localhost), and a headset on the LAN reaches the host by address.

Made on first use (cryptography) and kept in the user's config directory, not the checkout;
made again when it does not name the address the page is served on or is about to expire.
The headset's browser shows a warning for it once ("proceed" / "accept the risk").
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import sys
from pathlib import Path

from dexlink.errors import UserError

VALID_DAYS = 825  # the longest lifetime Apple's and Google's browsers accept for a leaf certificate
RENEW_BEFORE = datetime.timedelta(days=7)


def config_dir() -> Path:
    """dexlink's directory in the user's config location (DEXLINK_CONFIG_DIR overrides it)."""
    if os.environ.get("DEXLINK_CONFIG_DIR"):
        return Path(os.environ["DEXLINK_CONFIG_DIR"])
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "dexlink"


def host_names(bind: str) -> list[str]:
    """The names and addresses a browser may use to reach a server bound to `bind`."""
    names = {"localhost", "127.0.0.1", "::1", socket.gethostname()}
    if bind not in ("", "0.0.0.0", "::"):
        names.add(bind)
    else:
        try:
            names.update(info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None))
        except OSError:
            pass
        names.update(_outbound_address())
    return sorted(names)


def _outbound_address() -> list[str]:
    """The address this machine's LAN interface has: the one a headset on the network uses.
    (Connecting a UDP socket sends nothing; it only picks the route.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: never answered, only routed
            return [s.getsockname()[0]]
        except OSError:
            return []


def ensure_certificate(names: list[str], directory: Path | None = None) -> tuple[Path, Path]:
    """(certificate, key) PEM paths covering `names`, made now if missing, stale or too narrow."""
    try:
        from cryptography import x509
    except ImportError:
        raise UserError("the WebXR input serves HTTPS and needs cryptography: "
                        "pip install 'dexlink[inputs]'") from None
    directory = Path(directory) if directory else config_dir() / "webxr"
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    if cert_path.is_file() and key_path.is_file():
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            if _covers(cert, names) and _fresh(cert):
                return cert_path, key_path
        except ValueError:
            pass  # unreadable: make a new one
    directory.mkdir(parents=True, exist_ok=True)
    cert_pem, key_pem = _make(names)
    # The key is written readable by the user only, before it holds anything.
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    cert_path.write_bytes(cert_pem)
    return cert_path, key_path


def _alt_names(names):
    from cryptography import x509

    out = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name.split("%")[0])))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def _covers(cert, names) -> bool:
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have = {str(v) for v in san.get_values_for_type(x509.DNSName)}
    have |= {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    return all(str(_plain(n)) in have for n in names)


def _plain(name: str):
    try:
        return ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        return name


def _fresh(cert) -> bool:
    now = datetime.datetime.now(datetime.timezone.utc)
    return cert.not_valid_after_utc - now > RENEW_BEFORE


def _make(names) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dexlink WebXR (self-signed)")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(_alt_names(names)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem
