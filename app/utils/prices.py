"""What LLM calls cost: USD per million tokens, per model (LLM_PRICES, else OpenAI's list prices).

Read by the cost ledger (app/advanced/llm_usage.py), which prices what it counted when it is read,
and by the tenants' budgets in dollars (app/advanced/spend.py).
"""

import json
import os

# USD per million tokens.
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "gpt-4.1": {"input": 2.0, "output": 8.0},
    "gpt-4.1-mini": {"input": 0.4, "output": 1.6},
    "gpt-4.1-nano": {"input": 0.1, "output": 0.4},
    "gpt-4o": {"input": 2.5, "output": 10.0},
    "gpt-4o-mini": {"input": 0.15, "output": 0.6},
}


def price_table() -> dict[str, dict[str, float]]:
    """LLM_PRICES if set (e.g. '{"gpt-4.1": {"input": 2.0, "output": 8.0}}'), else DEFAULT_PRICES."""
    raw = os.environ.get("LLM_PRICES")
    if not raw:
        return DEFAULT_PRICES
    try:
        table = json.loads(raw)
        return {
            str(model): {"input": float(p["input"]), "output": float(p["output"])}
            for model, p in table.items()
        }
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise ValueError(
            f'LLM_PRICES must be JSON like {{"gpt-4.1": {{"input": 2.0, "output": 8.0}}}} ({e})'
        ) from e


PRICES = price_table()  # read once, at start: a bad table stops the endpoint with the message above


def cost(totals: dict[str, int], price: dict[str, float] | None) -> float | None:
    if price is None:
        return None
    return round(
        (totals["input_tokens"] * price["input"] + totals["output_tokens"] * price["output"]) / 1e6, 6
    )
