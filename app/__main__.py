"""The one endpoint of the tour: every service and Virtual Object, served over HTTP by hypercorn.

    python -m app                 # binds 127.0.0.1:9080 (APP_HOST / APP_PORT, or --host / --port)
    APP_WORKERS=2 python -m app   # two processes on that one address; a crashed one is replaced

`make run` starts it for you and registers it with the Restate Server; the server then calls it
for every invocation. It holds no state of its own: kill it at any time, start it again, and
Restate resumes the invocations that were running. How it is served: app/runtime/serving.py.
"""

import os

import restate

from app.advanced.any_model_agent import agent_service as any_model_agent
from app.advanced.guarded_agent import agent_service as guarded_claim_agent
from app.advanced.interruptible_agent import interruptible_agent, task_runs
from app.advanced.llm_usage import llm_usage, record_usage
from app.advanced.long_running_agent import scheduled_agent
from app.advanced.manual_loop_agent import manual_loop_agent
from app.advanced.mcp_agent import agent_service as mcp_claim_agent
from app.advanced.rollback_agent import agent_service as booking_with_rollback_agent
from app.advanced.spend import before_llm_call, spend
from app.advanced.streaming.agent import agent_service as streaming_agent
from app.advanced.streaming.topic import agent_events
from app.advanced.tool_approval_agent import agent_service as tool_approval_claim_agent
from app.chat import chat
from app.durable_agent import agent_service as weather_agent
from app.error_handling import agent_service as error_handling_agent
from app.human_approval_agent import agent_service as human_claim_approval_agent
from app.human_approval_agent_with_timeout import agent_service as human_claim_approval_with_timeouts_agent
from app.multi_agent import agent_service as multi_agent_claim_approval
from app.parallel_agents import agent_service as parallel_agent_claim_approval
from app.parallel_tools_agent import agent_service as parallel_tool_claim_agent
from app.remote_agents import remote_agent_service as remote_multi_agent_claim_approval
from app.runtime.agent_runs import install_agent_runs
from app.runtime.front_door import enforce_input_contract
from app.runtime.settings import JOURNAL_RETENTION
from app.runtime.tenants import carry_tenants
from app.sub_workflow_agent import agent_service as sub_workflow_claim_approval_agent, human_approval_workflow
from app.utils.review_inbox import review_inbox
from app.utils.sub_agents import eligibility_agent_service, fraud_agent_service, rate_comparison_agent_service
from app.workflows.claim_reimbursement import claim_service as claim_reimbursement
from app.workflows.code_generator import code_service as code_generator
from app.workflows.evaluation import evaluation
from app.workflows.notify_when_ready import agent_service as async_notifications_agent
from app.workflows.research_report import report_service as research_report, researcher_service as researcher

services: list[restate.Service | restate.VirtualObject | restate.Workflow] = [
    # Durable execution
    weather_agent,
    # Human-in-the-loop
    human_claim_approval_agent,
    human_claim_approval_with_timeouts_agent,
    sub_workflow_claim_approval_agent,
    human_approval_workflow,
    review_inbox,
    # Durable sessions
    chat,
    # Multi-agent coordination
    multi_agent_claim_approval,
    remote_multi_agent_claim_approval,
    # Parallel work
    parallel_tool_claim_agent,
    parallel_agent_claim_approval,
    # Error handling
    error_handling_agent,
    # Advanced patterns
    manual_loop_agent,
    booking_with_rollback_agent,
    # Agentic workflows
    claim_reimbursement,
    research_report,
    researcher,
    code_generator,
    async_notifications_agent,
    evaluation,
    # Beyond the tour
    scheduled_agent,
    streaming_agent,
    agent_events,
    interruptible_agent,
    task_runs,
    guarded_claim_agent,
    tool_approval_claim_agent,
    any_model_agent,
    llm_usage,
    spend,
    mcp_claim_agent,
    # Sub-agents, called by other agents as remote tools
    eligibility_agent_service,
    fraud_agent_service,
    rate_comparison_agent_service,
]

# Every handler's input is checked here, in one place: a request that breaks its model's rules is
# an HTTP 400 naming the field (app/runtime/front_door.py).
enforce_input_contract(services)

# Every run's journal is kept JOURNAL_RETENTION (7 days) after it ends: a finished run can be rerun
# from any of its steps, or forked onto a fix or another model (docs/control.md). The services that
# only record (the cost ledger, progress events, the inbox) keep none, as they say.
for service in services:
    if service.journal_retention is None:
        service.journal_retention = JOURNAL_RETENTION

# Every agent run, in every service above, ends when the model misbehaves (instead of retrying a
# journaled answer forever), keeps within its tenant's budget, and sends its LLM usage to the cost
# ledger once: installed here, under `DurableRunner.run` (app/runtime/agent_runs.py).
install_agent_runs(record_usage=record_usage, before_llm_call=before_llm_call)

# A request's tenant (`x-tenant`) follows it into every invocation it starts (app/runtime/tenants.py).
carry_tenants()

# Only Restate calls this endpoint (signed requests); the public web process is app/web/.
app = restate.app(
    services=services,
    # With keys set, only requests signed by our Restate Server are served (`make run` sets them).
    identity_keys=[key for key in os.environ.get("RESTATE_IDENTITY_KEYS", "").split(",") if key.strip()],
)


if __name__ == "__main__":
    from app.runtime.serving import main

    main()
