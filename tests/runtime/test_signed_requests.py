"""Signed requests: the endpoint serves only requests signed by our restate-server."""

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dev.harness import Tour
from dev.identity import base58, ensure_identity, public_key_of


def test_base58_matches_the_bitcoin_alphabet() -> None:
    assert base58(b"") == ""
    assert base58(b"\0\0\1") == "112"
    assert base58(b"hello world") == "StV1DL6CwTryKyV"


def test_keys_are_made_once_and_kept(tmp_path: object) -> None:
    from pathlib import Path

    directory = Path(str(tmp_path))
    pem, public = ensure_identity(directory)
    assert public.startswith("publickeyv1_") and ensure_identity(directory) == (pem, public)
    assert oct(pem.stat().st_mode & 0o777) == "0o600"
    assert public_key_of(Ed25519PrivateKey.generate()) != public


@pytest.mark.e2e
def test_a_direct_unsigned_call_to_the_endpoint_is_refused(stack: Tour) -> None:
    direct = httpx.post(
        f"{stack.endpoint_url}/invoke/WeatherAgent/run",
        content=b'{"message": "What is the weather like in Paris?"}',
        headers={"content-type": "application/json"},
        timeout=10,
    )
    discovery = httpx.get(f"{stack.endpoint_url}/discover", timeout=10)

    assert direct.status_code == 401
    assert discovery.status_code == 401
    # Through Restate, which signs its requests, the same call works.
    assert (
        stack.call("WeatherAgent/run", {"message": "What is the weather like in Paris?"}).status_code == 200
    )
