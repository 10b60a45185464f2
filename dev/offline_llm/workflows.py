"""The agents of the agentic workflows (app/workflows/), for the offline model.

- DocumentParser: a claim's data as JSON (`ClaimData`), read from the user's words.
- ClaimsAnalyst: whether the parsed claim is valid, and the amount approved.
- ResearchPlanner / Researcher / ReportWriter: three questions about a topic (JSON `TaskList`), a
  finding per question, a report that combines the findings it was given.
- CodeGenerator / CodeEvaluator: code for the tasks it knows (a palindrome check, FizzBuzz); the
  first palindrome check forgets case and punctuation, the review says so, the second is right.
- EvaluationJudge: grades an answer against what a good answer must do (JSON `Grade`): a decision
  (approves / rejects the claim) and any quoted text must be in the answer.

Each answers only what it can script; anything else is left to the stand-in's loud failure.
"""

import json
import re

from dev.offline_llm.claims import parse_claim
from dev.offline_llm.conversation import Conversation, Reply


def _starts(conv: Conversation, prefix: str) -> bool:
    return conv.instructions.strip().startswith(prefix)


# --- the prompt chain ----------------------------------------------------------------------------


def document_parser(conv: Conversation) -> Reply | None:
    if not _starts(conv, "Extract the claim amount"):
        return None
    claim = parse_claim(conv.last_user_text())
    if claim.amount is None:
        return None
    data = {"date": claim.date, "amount": claim.amount, "currency": claim.currency, "category": claim.kind(),
            "reason": claim.reason}  # fmt: skip
    return Reply(text=json.dumps(data))


def claims_analyst(conv: Conversation) -> Reply | None:
    if not _starts(conv, "Assess whether this claim is valid"):
        return None
    claim = parse_claim(conv.last_user_text())
    if claim.amount is None:
        return None
    if claim.covered():
        return Reply(
            text=f"The claim of {claim.money()} for {claim.reason} is valid ({claim.kind()} claim). "
            f"Approved amount: {claim.money()}."
        )
    return Reply(text=f"The claim of {claim.money()} for {claim.reason} is not covered. Approved amount: 0.")


# --- orchestrator-workers ----------------------------------------------------------------------------


def research_planner(conv: Conversation) -> Reply | None:
    if not _starts(conv, "You are a research planner"):
        return None
    topic = conv.last_user_text().strip().rstrip(".")
    if not topic:
        return None
    questions = [
        f"What is known about {topic[0].lower() + topic[1:]}?",
        f"Which figures describe {topic[0].lower() + topic[1:]}?",
        f"What are the open questions about {topic[0].lower() + topic[1:]}?",
    ]
    return Reply(text=json.dumps({"tasks": [{"question": q} for q in questions]}))


def researcher(conv: Conversation) -> Reply | None:
    if not _starts(conv, "You are a research assistant"):
        return None
    question = conv.last_user_text().strip()
    return Reply(
        text=f"Finding on {question!r}: the offline model knows no facts, so it reports the question."
    )


def report_writer(conv: Conversation) -> Reply | None:
    if not _starts(conv, "You are a report writer"):
        return None
    text = conv.last_user_text()
    topic = text.split("\n", 1)[0].removeprefix("Topic:").strip()
    try:
        findings = json.loads(text.split("Research findings:", 1)[1])
    except (IndexError, ValueError):
        return None
    lines = [f"{i}. {finding}" for i, finding in enumerate(findings, 1)]
    return Reply(text=f"Report: {topic}\n\n" + "\n".join(lines) + f"\n\n{len(findings)} findings combined.")


# --- evaluator-optimizer -------------------------------------------------------------------------

_NAIVE_PALINDROME = """def is_palindrome(s: str) -> bool:
    return s == s[::-1]"""

_PALINDROME = '''def is_palindrome(s: str) -> bool:
    """True if `s` reads the same backwards, ignoring case, spaces and punctuation."""
    letters = [c.lower() for c in s if c.isalnum()]
    return letters == letters[::-1]'''

_FIZZBUZZ = """def fizzbuzz(n: int) -> list[str]:
    return ["FizzBuzz" if i % 15 == 0 else "Fizz" if i % 3 == 0 else "Buzz" if i % 5 == 0 else str(i)
            for i in range(1, n + 1)]"""


def code_generator(conv: Conversation) -> Reply | None:
    if not _starts(conv, "You are a code generator"):
        return None
    text = conv.last_user_text().lower()
    if "palindrome" in text:
        return Reply(text=_PALINDROME if "previous attempt was rejected" in text else _NAIVE_PALINDROME)
    if "fizzbuzz" in text:
        return Reply(text=_FIZZBUZZ)
    return None


def code_evaluator(conv: Conversation) -> Reply | None:
    if not _starts(conv, "You are a code reviewer"):
        return None
    text = conv.last_user_text()
    if "def is_palindrome" in text:
        if ".lower()" not in text:
            return Reply(text="FAIL: 'A man, a plan, a canal: Panama' is a palindrome, but this code says "
                         "no: ignore case, spaces and punctuation.")  # fmt: skip
        return Reply(text="PASS")
    if "def fizzbuzz" in text:
        return Reply(text="PASS")
    return None


# --- the judge of an evaluation ----------------------------------------------------------------------

_QUOTED = re.compile(r"'([^']+)'|\"([^\"]+)\"")


def judge(conv: Conversation) -> Reply | None:
    if not _starts(conv, "You are the judge of an evaluation"):
        return None
    text = conv.last_user_text()
    match = re.search(r"\nAnswer: (?P<answer>.*)\nA good answer: (?P<expect>.*)\Z", text, re.S)
    if match is None:
        return None
    answer, expect = match.group("answer").lower(), match.group("expect")
    missing = [q for pair in _QUOTED.findall(expect) for q in pair if q and q.lower() not in answer]
    lowered = expect.lower()
    decision = "approved" if "approve" in lowered else "rejected" if "reject" in lowered else None
    wrong = decision is not None and (
        decision not in answer or ({"approved", "rejected"} - {decision}).pop() in answer
    )
    if not missing and not wrong:
        verb = {"approved": "approves the claim", "rejected": "rejects the claim", None: "says what it must"}
        reason = f"The answer {verb[decision]}, as a good answer must."
        return Reply(text=json.dumps({"score": 1.0, "passed": True, "reason": reason}))
    why = (
        f"it does not say {', '.join(map(repr, missing))}"
        if missing
        else f"the claim is not {decision} in it"
    )
    return Reply(
        text=json.dumps({"score": 0.0, "passed": False, "reason": f"The answer misses the mark: {why}."})
    )
