"""Request signing: restate-server signs every request it sends to the endpoint, and the endpoint
refuses requests without a valid signature, so only our Restate Server can invoke the agents.

The server gets an Ed25519 private key (PEM); the endpoint gets the matching public key in
Restate's format, `publickeyv1_<base58 of the 32 raw key bytes>`, through RESTATE_IDENTITY_KEYS.
"""

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58(data: bytes) -> str:
    """Bitcoin-alphabet base58, leading zero bytes kept as '1'."""
    number = int.from_bytes(data, "big")
    digits = ""
    while number:
        number, remainder = divmod(number, 58)
        digits = _BASE58[remainder] + digits
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + digits


def public_key_of(private_key: Ed25519PrivateKey) -> str:
    raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "publickeyv1_" + base58(raw)


def ensure_identity(directory: Path) -> tuple[Path, str]:
    """The key pair kept in `directory` (made on first use): (private key PEM file, public key)."""
    pem = directory / "request-identity.pem"
    if pem.exists():
        key = serialization.load_pem_private_key(pem.read_bytes(), password=None)
        assert isinstance(key, Ed25519PrivateKey), f"{pem} is not an Ed25519 key"
    else:
        directory.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem.touch(mode=0o600)
        pem.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return pem, public_key_of(key)
