"""A prompt chain: parse a claim, analyse it, convert its currency, pay it; each a durable step.

`ClaimReimbursement/process` chains two agents and two plain steps. The parser's answer is
structured (`ClaimData`); the analyst reads it; then the amount is converted to USD and paid.
Every LLM call and both steps are journaled: a crash between any two resumes at the next one,
and the claim is never parsed, analysed or paid twice.

    curl localhost:8080/ClaimReimbursement/process --json '{"message": "Process my hospital bill of 3000EUR for a broken leg."}'

answers `{"analysis": "...", "amount_usd": 3240.0, "confirmation": "Payment processed for claim ...: $3,240.00"}`.
The UI shows `call LLM` (parse), `call LLM` (analysis), `Convert currency`, `Process payment`.
"""

from typing import Any

import restate
from agents import Agent
from restate.ext.openai import DurableRunner

from app.runtime.settings import LLM_RETRY, MAX_TURNS, MODEL
from app.utils.claims import ClaimData, ClaimPrompt, convert_currency, process_payment

parse_agent = Agent[restate.Context](
    name="DocumentParser",
    instructions="Extract the claim amount, currency, category, and description.",
    output_type=ClaimData,
    model=MODEL,
)

analysis_agent = Agent[restate.Context](
    name="ClaimsAnalyst",
    instructions="Assess whether this claim is valid and determine the approved amount.",
    model=MODEL,
)

claim_service = restate.Service("ClaimReimbursement")


@claim_service.handler()
async def process(restate_context: restate.Context, req: ClaimPrompt) -> dict[str, Any]:
    # Step 1: parse the claim (an LLM call, structured output)
    parsed = await DurableRunner.run(
        parse_agent, req.message, context=restate_context, run_options=LLM_RETRY, max_turns=MAX_TURNS
    )
    claim: ClaimData = parsed.final_output

    # Step 2: analyse it (an LLM call)
    analysis = await DurableRunner.run(
        analysis_agent,
        f"Claim: {claim.model_dump_json()}",
        context=restate_context,
        run_options=LLM_RETRY,
        max_turns=MAX_TURNS,
    )

    # Step 3: convert the currency (a plain step)
    amount_usd = await restate_context.run_typed(
        "Convert currency", convert_currency, amount=claim.amount, source=claim.currency, target="USD"
    )

    # Step 4: pay (a plain step; the claim id is journaled, so a retry pays the same claim)
    confirmation = await restate_context.run_typed(
        "Process payment", process_payment, claim_id=str(restate_context.uuid()), amount=amount_usd
    )
    return {"analysis": analysis.final_output, "amount_usd": amount_usd, "confirmation": confirmation}
