"""Insurance claims for the offline model: reading a claim from a prompt, and the claim skills."""

import json
import re
from dataclasses import dataclass
from typing import Any

from dev.offline_llm.conversation import Conversation, Reply, Tool, fill_arguments

APPROVAL_THRESHOLD = 1000

_MEDICAL = ("hospital", "doctor", "clinic", "surgery", "broken", "fracture", "leg", "arm", "dental",
            "dentist", "medication", "medical", "x-ray", "mri", "ambulance", "physio", "therapy", "sprain")  # fmt: skip
_AUTO = ("car", "vehicle", "accident", "collision", "bumper", "windshield", "garage", "tow", "auto", "crash")
_PLACES = ("hospital", "clinic", "pharmacy", "dentist", "emergency room", "garage", "repair shop", "doctor")

_AMOUNT = re.compile(
    r"(?P<pre>[$€£])?\s?(?P<num>\d[\d,]*(?:\.\d+)?)\s?(?P<k>k\b)?\s?(?P<cur>usd|eur|gbp|dollars?|euros?|[$€£])?",
    re.IGNORECASE,
)
_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")
_REASON = re.compile(
    r"\bfor (?:a |an |my |the )?(?P<reason>[^.,;!?]+?)(?=\s+(?:at|on|in|from)\b|[.,;!?]|$)", re.IGNORECASE
)


@dataclass
class Claim:
    amount: float | None
    currency: str
    category: str
    place: str
    reason: str
    date: str

    def money(self) -> str:
        return f"{self.amount:,.0f} {self.currency}" if self.amount is not None else "an unknown amount"

    def arguments(self) -> dict[str, Any]:
        """Values for a tool's claim parameters, under both spellings of place_of_service."""
        return {
            "date": self.date,
            "amount": self.amount or 0,
            "category": self.category,
            "placeOfService": self.place,
            "place_of_service": self.place,
            "reason": self.reason,
        }

    def covered(self) -> bool:
        """The stand-in's own rule when no human decides: medical and auto claims are covered."""
        return self.category in ("medical", "auto")


def _amount(text: str) -> tuple[float | None, str]:
    best: tuple[float, str] | None = None
    for m in _AMOUNT.finditer(text):
        if _DATE.match(text, m.start("num")):
            continue
        value = float(m.group("num").replace(",", "")) * (1000 if m.group("k") else 1)
        marker = (m.group("pre") or m.group("cur") or "").lower()
        currency = {"$": "USD", "€": "EUR", "£": "GBP"}.get(marker[:1] if marker in "$€£" else "", "")
        if not currency and marker:
            currency = {"usd": "USD", "dol": "USD", "eur": "EUR", "gbp": "GBP"}.get(
                marker[:3], marker.upper()
            )
        if currency:
            return value, currency  # a number with a currency is the amount
        if best is None:
            best = (value, "USD")
    return best if best is not None else (None, "USD")


def parse_claim(text: str) -> Claim:
    """A claim from a sentence ("hospital bill of 3000USD for a broken leg") or from claim JSON."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and "amount" in data:
        return Claim(
            amount=float(data.get("amount") or 0),
            currency=str(data.get("currency", "USD")),
            category=str(data.get("category", "other")).lower(),
            place=str(data.get("placeOfService") or data.get("place_of_service") or "unknown"),
            reason=str(data.get("reason", "not given")),
            date=str(data.get("date", "not given")),
        )
    lowered = text.lower()
    amount, currency = _amount(text)
    words = set(re.findall(r"[a-z][a-z-]*", lowered))
    if words & set(_MEDICAL) or "x-ray" in lowered:
        category = "medical"
    elif words & set(_AUTO):
        category = "auto"
    else:
        category = "other"
    place = next((p for p in _PLACES if p in lowered), "unknown")
    reason_match = _REASON.search(text)
    reason = reason_match.group("reason").strip() if reason_match else text.strip().rstrip(".")
    date_match = _DATE.search(text)
    return Claim(
        amount, currency, category, place, reason, date_match.group(1) if date_match else "not given"
    )


def _approval_tool(conv: Conversation) -> Tool | None:
    return next((t for t in conv.tools if "approv" in t.name.lower()), None)


def claim_approval(conv: Conversation) -> Reply | None:
    """Claim agents with an approval tool: ask a human above 1000, decide alone otherwise."""
    tool = _approval_tool(conv)
    if tool is None or "claim" not in conv.instructions.lower():
        return None
    claim = parse_claim(conv.last_user_text())
    if claim.amount is None:
        return Reply(
            text="Please tell me the amount of the claim, what it is for, and where the costs arose."
        )

    results = conv.results(tool.name)
    if not results:
        if claim.amount > APPROVAL_THRESHOLD:
            return Reply(calls=[(tool.name, fill_arguments(tool.parameters, claim.arguments()))])
        verdict = "approved" if claim.covered() else "rejected, as this kind of claim is not covered"
        return Reply(
            text=f"The claim of {claim.money()} for {claim.reason} is {verdict}. It is below "
            f"{APPROVAL_THRESHOLD}, so I decided without a human review."
        )

    outcome = results[-1][1].lower()
    if "timed out" in outcome or "timeout" in outcome:
        verdict = "approved" if claim.covered() else "rejected"
        return Reply(
            text=f"The human review of the claim of {claim.money()} for {claim.reason} timed out, so I "
            f"evaluated it myself: {verdict} ({claim.category} claim)."
        )
    if "reject" in outcome or "denied" in outcome or outcome.strip() in ("false", "no"):
        return Reply(
            text=f"The claim of {claim.money()} for {claim.reason} was rejected by a human reviewer."
        )
    if "approv" in outcome or outcome.strip() in ("true", "yes"):
        return Reply(
            text=f"The claim of {claim.money()} for {claim.reason} was approved by a human reviewer."
        )
    return Reply(text=f"I could not get a decision on the claim of {claim.money()}: {results[-1][1].strip()}")
