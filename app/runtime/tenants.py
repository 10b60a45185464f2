"""Tenants: whose run this is, named by a request header and carried into all the run starts.

A request names its tenant with `x-tenant: <name>` (the public web process passes it on); without
it, the tenant is `default`. A name is 1 to 36 letters, digits, `.`, `_` or `-`, starting with a
letter or digit (it can then also be a Restate limit key); anything else is refused, as every
bad input is, with a 400 that names it (the front door, app/runtime/front_door.py).

The tenant follows the run: every call and send an invocation makes carries its `x-tenant`
header, so sub-agents, remote agents and workflow workers spend from the same budget
(app/advanced/spend.py); guardrail runs are part of the run that started them. The header is part
of the journaled call, taken from the journaled request: the same on every replay.
"""

import re
from typing import Any

import restate
from restate.server_context import ServerInvocationContext

TENANT_HEADER = "x-tenant"
DEFAULT_TENANT = "default"
TENANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,35}")


def _given(restate_context: restate.Context) -> str | None:
    for name, value in restate_context.request().headers.items():
        if name.lower() == TENANT_HEADER:
            return str(value)
    return None


def tenant_of(restate_context: restate.Context) -> str:
    """The tenant of the invocation (checked by the front door before the handler ran)."""
    return _given(restate_context) or DEFAULT_TENANT


def check_tenant(restate_context: restate.Context) -> None:
    """The 400 for a tenant header that is not a tenant name."""
    given = _given(restate_context)
    if given is not None and not TENANT_NAME.fullmatch(given):
        raise restate.TerminalError(
            f"Invalid request: {TENANT_HEADER}: must be 1 to 36 letters, digits, '.', '_' or '-', "
            f"starting with a letter or digit (got {given[:40]!r})",
            status_code=400,
        )


def carry_tenants() -> None:
    """Every call and send of an invocation with a tenant carries its header (installed once, by
    the endpoint, before it serves)."""
    do_raw_call = ServerInvocationContext.do_raw_call
    headers_at = 9  # do_raw_call(service, handler, input, input_serde, output_serde, key, delay, send, idempotency_key, headers, ...)

    def with_tenant(self: ServerInvocationContext, *args: Any, **kwargs: Any) -> Any:
        given = _given(self)
        if given is not None:
            if len(args) > headers_at:
                args = (
                    *args[:headers_at],
                    {TENANT_HEADER: given, **(args[headers_at] or {})},
                    *args[headers_at + 1 :],
                )
            else:
                kwargs["headers"] = {TENANT_HEADER: given, **(kwargs.get("headers") or {})}
        return do_raw_call(self, *args, **kwargs)

    setattr(ServerInvocationContext, "do_raw_call", with_tenant)  # noqa: B010
