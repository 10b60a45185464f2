"""Tour step 8, parallel tool steps: ParallelToolClaimAgent."""

import pytest

from dev.harness import Tour
from tests.tour.helpers import claim_body, overlap

pytestmark = pytest.mark.e2e


def test_the_three_claim_steps_run_at_the_same_time(stack: Tour) -> None:
    body, marker = claim_body()
    resp = stack.call("ParallelToolClaimAgent/run", body)

    assert resp.status_code == 200, resp.text
    assert resp.json().startswith(
        f"Decision: the claim of 3,000 USD for hospital bill for a broken leg ({marker}) is approved."
    )
    assert "'eligibility: eligible', 'cost: reasonable', 'fraud: low risk'" in resp.json()
    steps = {name: (start, end) for name, start, end in stack.step_times(resp.headers["x-restate-id"])}
    # Each step takes about a second; they overlap, so together they took about one second, not three.
    assert overlap([steps["eligibility"], steps["cost"], steps["fraud"]])
