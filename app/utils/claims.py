"""Insurance claims: the models of the claim agents (steps 2-9) and the claim checks they run.

Claim fields are camelCase in JSON (`placeOfService`). An `InsuranceClaim` is also the argument
of claim tools, filled in by the LLM (its docstring and descriptions are in the tool's schema):
the rules are validators that stay out of that schema (app/runtime/request_models.py).
"""

import asyncio
import os
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from restate import TerminalError

from app.runtime.request_models import IsoDate, PositiveAmount, RequestModel, ShortText, message_field

# The most a claim may pay out (GuardedClaimAgent's output guardrail, ToolApprovalClaimAgent's tool guardrail).
POLICY_LIMIT = float(os.environ.get("POLICY_LIMIT", "10000"))

TOUR_CLAIM: dict[str, Any] = {
    "date": "2024-10-01",
    "amount": 3000,
    "category": "orthopedic",
    "placeOfService": "General Hospital",
    "reason": "hospital bill for a broken leg",
}


class ClaimPrompt(RequestModel):
    """An insurance claim, described in words."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {"message": "Process my hospital bill of 3000USD for a broken leg."}
    ]

    message: str = message_field(
        "Process my hospital bill of 3000USD for a broken leg.",
        "The claim in plain words: what happened, where, and the amount.",
    )


class InsuranceClaim(RequestModel):
    """An insurance claim. JSON field names are camelCase (placeOfService)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        # "Place of service" in the playground, not the alias's "Placeofservice".
        field_title_generator=lambda name, _info: name.replace("_", " ").capitalize(),
    )

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [TOUR_CLAIM]

    date: IsoDate | None = Field(
        default=None,
        description="When the costs were incurred, YYYY-MM-DD (e.g. 2024-10-01); null if unknown.",
    )
    # A model fills these from the user's words, which may not say: each description tells it what
    # to write then, instead of leaving it to invent something.
    amount: PositiveAmount = Field(description="The amount claimed, greater than 0.")
    category: ShortText = Field(
        description="The kind of claim, e.g. medical or auto; 'other' if the claim does not say."
    )
    place_of_service: ShortText = Field(
        description="Where the service was provided, e.g. a hospital; 'unknown' if the claim does not say."
    )
    reason: ShortText = Field(description="What the claim is for, e.g. a broken leg.")


class ClaimData(BaseModel):
    """A claim as an agent read it from the user's words (workflows/claim_reimbursement.py)."""

    date: str | None = Field(description="When the costs arose, YYYY-MM-DD; null if the claim names no date.")
    amount: PositiveAmount = Field(description="The amount claimed, greater than 0.")
    currency: str = Field(description="The currency of the amount, an ISO 4217 code such as USD or EUR.")
    category: str = Field(description="The kind of claim: medical, auto, travel or other.")
    reason: str = Field(description="What the claim is for, e.g. a broken leg.")


# --- claim checks (parallel_tools_agent.py, the claim checks MCP server) ---------------------------
# Simplified rules standing in for calls to a claims system. Each takes a moment, like the real
# thing would; that makes the parallel steps visible side by side in the UI's timeline.
CLAIM_CHECK_SECONDS = float(os.environ.get("CLAIM_CHECK_SECONDS", "1.0"))
COVERED_CATEGORIES = ("medical", "orthopedic", "dental", "auto")


async def check_eligibility(claim: InsuranceClaim) -> str:
    """Is this kind of claim covered at all?"""
    await asyncio.sleep(CLAIM_CHECK_SECONDS)
    return "eligible" if claim.category.lower() in COVERED_CATEGORIES else "not eligible"


async def compare_to_standard_rates(claim: InsuranceClaim) -> str:
    """Is the amount in line with what such claims usually cost?"""
    await asyncio.sleep(CLAIM_CHECK_SECONDS)
    return "reasonable" if claim.amount <= 10_000 else "not reasonable"


async def check_fraud(claim: InsuranceClaim) -> str:
    """How likely is this claim to be fraudulent?"""
    await asyncio.sleep(CLAIM_CHECK_SECONDS)
    return "high risk" if claim.amount > 20_000 else "medium risk" if claim.amount > 10_000 else "low risk"


# --- payouts (advanced/tool_approval_agent.py) ---------------------------------------------------


async def pay_out(claim: InsuranceClaim, payment_id: str) -> str:
    """The simulated payment system: pays the claim and says so in the log (once per payment)."""
    await asyncio.sleep(CLAIM_CHECK_SECONDS / 10)
    print(f"💸 Paid {claim.amount:,.0f} USD for {claim.reason!r} [{payment_id}]", flush=True)
    return payment_confirmation(claim, payment_id)


def payment_confirmation(claim: InsuranceClaim, payment_id: str) -> str:
    return f"Paid {claim.amount:,.0f} USD, payment {payment_id}"


# --- reimbursements (workflows/claim_reimbursement.py) -------------------------------------------
USD_PER_UNIT = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27, "CHF": 1.12}  # a simulated rate table


async def convert_currency(amount: float, source: str, target: str = "USD") -> float:
    """The simulated exchange: an amount in `source` currency, in `target` currency."""
    return round(amount * _usd_per_unit(source) / _usd_per_unit(target), 2)


def _usd_per_unit(currency: str) -> float:
    rate = USD_PER_UNIT.get(currency.strip().upper())
    if rate is None:
        # The claim names a currency the exchange does not know: retrying cannot change that.
        raise TerminalError(
            f"Cannot convert {currency!r}: known currencies are {', '.join(USD_PER_UNIT)}", 422
        )
    return rate


async def process_payment(claim_id: str, amount: float) -> str:
    """The simulated payment system: reimburses the claim and says so in the log (once per payment)."""
    await asyncio.sleep(CLAIM_CHECK_SECONDS / 10)
    print(f"💸 Reimbursed {amount:,.2f} USD for claim {claim_id}", flush=True)
    return f"Payment processed for claim {claim_id}: ${amount:,.2f}"
