"""Guardrail agents for the offline model (app/advanced/guarded_agent.py).

Each guardrail agent's instructions start with `Guardrail '<name>'`; it answers with the JSON of
its output type (the Agents SDK asks for structured output and parses the text):

- `is_insurance_claim`: a claim names an amount and something to reimburse (a bill, damage, an
  injury...): `{"is_insurance_claim": true|false, "reason": "..."}`.
- `within_policy_limit`: reads an agent's answer; an answer that approves a claim promises its
  amount: `{"promised_amount": 50000.0|null, "reason": "..."}`.
"""

import json
import re

from dev.offline_llm.claims import parse_claim
from dev.offline_llm.conversation import Conversation, Reply

_CLAIM_WORDS = {"claim", "bill", "invoice", "reimburse", "reimbursement", "damage", "damaged", "repair",
                "injury", "stolen", "theft", "loss", "costs", "receipt"}  # fmt: skip


def _guardrail(conv: Conversation) -> str | None:
    match = re.match(r"\s*Guardrail '([a-z_]+)'", conv.instructions)
    return match.group(1) if match else None


def is_insurance_claim(text: str) -> tuple[bool, str]:
    claim = parse_claim(text)
    words = set(re.findall(r"[a-z][a-z-]*", text.lower()))
    if claim.amount is not None and (claim.kind() != "other" or words & _CLAIM_WORDS):
        return True, f"The message asks to reimburse {claim.money()} for {claim.reason}."
    if claim.amount is None and (claim.kind() != "other" or words & _CLAIM_WORDS):
        return False, "The message names no amount to reimburse."
    return False, "The message describes no loss, damage or bill to reimburse."


def promised_amount(answer: str) -> tuple[float | None, str]:
    lowered = answer.lower()
    claim = parse_claim(answer)
    if "approved" in lowered and "rejected" not in lowered and claim.amount is not None:
        return claim.amount, f"The answer approves a payment of {claim.money()}."
    return None, "The answer promises no payment."


def guardrails(conv: Conversation) -> Reply | None:
    """The guardrail agents: a verdict as JSON, from the message (or the answer) they check."""
    name = _guardrail(conv)
    if name == "is_insurance_claim":
        verdict, reason = is_insurance_claim(conv.last_user_text())
        return Reply(text=json.dumps({"is_insurance_claim": verdict, "reason": reason}))
    if name == "within_policy_limit":
        amount, reason = promised_amount(conv.last_user_text())
        return Reply(text=json.dumps({"promised_amount": amount, "reason": reason}))
    return None
