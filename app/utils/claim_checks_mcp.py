"""The claim checks as a small MCP server (stdio), for McpClaimAgent (app/advanced/mcp_agent.py).

    python -m app.utils.claim_checks_mcp     # speaks MCP on stdin/stdout; the agent starts it

Three checks, the same simplified rules as the tour's claim checks (app/utils/claims.py):
`check_eligibility`, `compare_to_standard_rates`, `check_fraud`; and `pay_claim`, a payout. Each
call is a side effect a user can see: a line on stderr (the endpoint's log, since the endpoint
starts this server), `[claim checks MCP] check_fraud of 'hospital bill for a broken leg': low risk`.
"""

import sys
import uuid
from collections.abc import Awaitable

from mcp.server.mcpserver import MCPServer

from app.utils.claims import (
    InsuranceClaim,
    check_eligibility,
    check_fraud,
    compare_to_standard_rates,
    payment_confirmation,
)

server = MCPServer("claim-checks")


async def logged(tool: str, claim: InsuranceClaim, check: Awaitable[str]) -> str:
    verdict = await check
    print(f"[claim checks MCP] {tool} of {claim.reason!r}: {verdict}", file=sys.stderr, flush=True)
    return verdict


@server.tool(name="check_eligibility")
async def eligibility(claim: InsuranceClaim) -> str:
    """Is this kind of claim covered at all? Answers eligible or not eligible."""
    return await logged("check_eligibility", claim, check_eligibility(claim))


@server.tool(name="compare_to_standard_rates")
async def rates(claim: InsuranceClaim) -> str:
    """Is the amount in line with what such claims usually cost? Answers reasonable or not."""
    return await logged("compare_to_standard_rates", claim, compare_to_standard_rates(claim))


@server.tool(name="check_fraud")
async def fraud(claim: InsuranceClaim) -> str:
    """How likely is this claim to be fraudulent? Answers low, medium or high risk."""
    return await logged("check_fraud", claim, check_fraud(claim))


@server.tool(name="pay_claim")
async def pay(claim: InsuranceClaim) -> str:
    """Pay out the claim. Answers with the payment's confirmation."""

    async def payment() -> str:
        return payment_confirmation(claim, f"mcp-{uuid.uuid4().hex[:12]}")

    return await logged("pay_claim", claim, payment())


if __name__ == "__main__":
    server.run("stdio")
