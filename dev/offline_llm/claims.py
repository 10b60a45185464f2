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
_MEDICAL_WORDS = {*_MEDICAL, "orthopedic", "health", "injury", "treatment", "emergency", "x-ray"}
_AUTO_WORDS = set(_AUTO)
_PLACES = ("hospital", "clinic", "pharmacy", "dentist", "emergency room", "garage", "repair shop", "doctor")

_AMOUNT = re.compile(
    r"(?P<pre>[$€£])?\s?(?P<num>\d[\d,]*(?:\.\d+)?)\s?(?P<k>k\b)?\s?(?P<cur>usd|eur|gbp|chf|jpy|cad|dollars?|euros?|[$€£])?",
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
    date: str | None  # ISO date, None when the text names none

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

    def kind(self) -> str:
        """medical, auto or other: from the category, or else from the words of the claim."""
        for text in (self.category, f"{self.reason} {self.place}"):
            words = set(re.findall(r"[a-z][a-z-]*", text.lower()))
            if words & _MEDICAL_WORDS:
                return "medical"
            if words & _AUTO_WORDS:
                return "auto"
        return "other"

    def covered(self) -> bool:
        """The stand-in's own rule when no human decides: medical and auto claims are covered."""
        return self.kind() in ("medical", "auto")


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


def _embedded_json(text: str) -> Any:
    """The JSON object in a text such as `Claim: {...}`, or None."""
    start = text.find("{")
    if start < 0:
        return None
    try:
        return json.loads(text[start : text.rfind("}") + 1])
    except ValueError:
        return None


def parse_claim(text: str) -> Claim:
    """A claim from a sentence ("hospital bill of 3000USD for a broken leg") or from claim JSON."""
    data = _embedded_json(text)
    if isinstance(data, dict) and "amount" in data:
        return Claim(
            amount=float(data.get("amount") or 0),
            currency=str(data.get("currency", "USD")),
            category=str(data.get("category", "other")).lower(),
            place=str(data.get("placeOfService") or data.get("place_of_service") or "unknown"),
            reason=str(data.get("reason", "not given")),
            date=str(data["date"]) if data.get("date") else None,
        )
    lowered = text.lower()
    amount, currency = _amount(text)
    words = set(re.findall(r"[a-z][a-z-]*", lowered))
    category = "medical" if words & _MEDICAL_WORDS else "auto" if words & _AUTO_WORDS else "other"
    place = next((p for p in _PLACES if p in lowered), "unknown")
    reason_match = _REASON.search(text)
    reason = reason_match.group("reason").strip() if reason_match else text.strip().rstrip(".")
    date_match = _DATE.search(text)
    return Claim(amount, currency, category, place, reason, date_match.group(1) if date_match else None)


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


def claim_payout(conv: Conversation) -> Reply | None:
    """A claim agent with a payout tool: pay each claim the user describes (several claims in one
    message are paid with parallel calls), then say what was paid and what was not, and why."""
    tool = next((t for t in conv.tools if t.name.startswith("pay") and "claim" in t.name), None)
    if tool is None or len(conv.tools) > 1:  # with checks to run first: claim_tools
        return None
    claims = [c for c in map(parse_claim, re.split(r"\band\b(?= my\b)|;", conv.last_user_text())) if c.amount]
    if not claims:
        return Reply(text="Please tell me the amount of the claim, and what it is for.")
    results = conv.results(tool.name)
    if not results:
        return Reply(calls=[(tool.name, fill_arguments(tool.parameters, c.arguments())) for c in claims])
    lines = []
    for claim, (_, output) in zip(claims, results, strict=False):
        if output.startswith("Paid"):
            lines.append(f"The claim of {claim.money()} for {claim.reason} was paid ({output.strip()})")
        else:
            lines.append(f"The claim of {claim.money()} for {claim.reason} was not paid: {output.strip()}")
    return Reply(text=" ".join(line.rstrip(".") + "." for line in lines))


def _claim_of(conv: Conversation) -> Claim:
    """The claim under discussion: the latest user message that describes one."""
    for text in reversed(conv.user_texts()):
        claim = parse_claim(text)
        if claim.amount is not None:
            return claim
    return parse_claim(conv.last_user_text())


def handoff_router(conv: Conversation) -> Reply | None:
    """An intake agent with handoffs: hand the claim to the specialist for its kind."""
    handoffs = [t for t in conv.tools if t.name.startswith("transfer_to_")]
    if not handoffs:
        return None
    claim = _claim_of(conv)
    kind = claim.kind()
    for tool in handoffs:
        if kind in f"{tool.name} {tool.description}".lower():
            return Reply(calls=[(tool.name, {})])
    back = next((t for t in handoffs if "intake" in t.name), None)
    if back is not None:
        # A specialist: decide its own kind of claim (claim_decider), hand any other back.
        return None if _specialty(conv) == kind else Reply(calls=[(back.name, {})])
    names = ", ".join(t.name.removeprefix("transfer_to_") for t in handoffs)
    return Reply(text=f"I cannot route a claim of kind '{kind}': the specialists here are {names}.")


_CHECKS = {
    # keyword in the instructions -> (what the check is called, its verdict for a claim)
    "eligib": ("eligibility", lambda c: "eligible" if c.kind() == "medical" else "not eligible"),
    "fraud": (
        "fraud risk",
        lambda c: (
            "high risk"
            if (c.amount or 0) > 20000
            else "medium risk"
            if (c.amount or 0) > 10000
            else "low risk"
        ),
    ),
    "reasonable": (
        "rate comparison",
        lambda c: "reasonable" if (c.amount or 0) <= 10000 else "not reasonable",
    ),
}


def claim_check(conv: Conversation) -> Reply | None:
    """A sub-agent with one question about a claim (eligibility, fraud, rates) answers it."""
    if conv.tools:
        return None
    instructions = conv.instructions.lower()
    for keyword, (_, verdict) in _CHECKS.items():
        if keyword in instructions and "claim" in instructions:
            return Reply(text=verdict(_claim_of(conv)))
    return None


def _verdict_words(outputs: list[str]) -> str:
    """approved unless a check came back negative."""
    negative = ("not eligible", "not reasonable", "high risk", "rejected", "denied", "not approved")
    return "rejected" if any(n in o.lower() for o in outputs for n in negative) else "approved"


def claim_tools(conv: Conversation) -> Reply | None:
    """An agent whose tools analyse a claim: call each of them once, then decide from the results."""
    claim_tools = [t for t in conv.tools if {"amount", "reason"} <= {n.lower() for n in t.param_names()}]
    if not claim_tools or any(t.name.startswith("transfer_to_") for t in conv.tools):
        return None
    claim = _claim_of(conv)
    pending = [t for t in claim_tools if not conv.called(t.name)]
    if pending:
        return Reply(calls=[(t.name, fill_arguments(t.parameters, claim.arguments())) for t in pending])
    results = conv.results()
    outputs = [out for _, out in results]
    findings = "; ".join(f"{call.name}: {out.strip()}" for call, out in results)
    return Reply(
        text=f"Decision: the claim of {claim.money()} for {claim.reason} is {_verdict_words(outputs)}. "
        f"Findings: {findings}."
    )


_LIMIT = re.compile(r"up to \$?(\d[\d,]*)", re.IGNORECASE)


def _specialty(conv: Conversation) -> str | None:
    """medical or auto, for a specialist whose instructions name its kind of claims."""
    instructions = conv.instructions.lower()
    return next((k for k in ("medical", "auto") if f"{k} claims" in instructions), None)


def claim_decider(conv: Conversation) -> Reply | None:
    """A specialist or decision agent without tools: decide the claim, within its limit if it has one."""
    instructions = conv.instructions.lower()
    # Tools other than a handoff back to intake mean another skill's job.
    if any("intake" not in t.name for t in conv.tools) or "claim" not in instructions:
        return None
    claim = _claim_of(conv)
    if claim.amount is None:
        return None
    limit_match = _LIMIT.search(conv.instructions)
    limit = float(limit_match.group(1).replace(",", "")) if limit_match else None
    specialty = _specialty(conv)
    if specialty is not None and claim.kind() != specialty:
        return Reply(text=f"Rejected: this is not a {specialty} claim, so it is outside my competence.")
    if limit is not None and claim.amount > limit:
        return Reply(text=f"Rejected: {claim.money()} is above my approval limit of {limit:,.0f}.")
    # Earlier findings in the conversation (e.g. from parallel checks) weigh in.
    earlier = [m.text for m in conv.messages if m.role in ("user", "tool_output")]
    verdict = _verdict_words(earlier)
    who = f"As the {specialty} specialist, I" if specialty else "I"
    return Reply(text=f"{who} reviewed the claim of {claim.money()} for {claim.reason}: {verdict}.")
