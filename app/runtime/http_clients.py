"""HTTP clients reused, one per event loop and purpose (the weather API, the streamed text's ingress).

Creating a client costs tens of milliseconds (it loads the TLS certificates), more than the call
itself, and a client's connections belong to the loop that opened them.
"""

import asyncio
import weakref
from collections.abc import Callable

import httpx

_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, httpx.AsyncClient]]" = (
    weakref.WeakKeyDictionary()
)


def loop_client(purpose: str, make: Callable[[], httpx.AsyncClient]) -> httpx.AsyncClient:
    """The client for `purpose` on the running event loop, made by `make` the first time."""
    clients = _clients.setdefault(asyncio.get_running_loop(), {})
    if (client := clients.get(purpose)) is None:
        client = clients[purpose] = make()
    return client
