"""MCP tools, journaled: an agent whose tools come from an MCP server, every MCP call a durable step.

`McpClaimAgent` checks a claim with the tools of a small MCP server that ships with the project
(app/utils/claim_checks_mcp.py, stdio; the endpoint starts it once and shares it).
`JournaledMcpServer` puts Restate between the Agents SDK and the server: the tool list is the
durable step `MCP list tools`, each tool call the durable step `MCP <tool>` with bounded retries,
so a replay reads them from the journal and an MCP call that finished is never made again. One
tool call per turn (`parallel_tool_calls=False`) keeps the steps in one order on every replay.

    curl localhost:8080/McpClaimAgent/run --json '{"date": "2024-10-01", "amount": 3000, "category": "orthopedic", "placeOfService": "General Hospital", "reason": "hospital bill for a broken leg"}'

The UI shows `MCP list tools`, then each `call LLM` followed by one MCP step; the endpoint's log
has one `[claim checks MCP]` line per check that really ran.
"""

import asyncio
import sys
from datetime import timedelta
from typing import Any

import restate
from agents import Agent, ModelSettings
from agents.mcp import MCPServer, MCPServerStdio
from mcp.types import CallToolResult, GetPromptResult, ListPromptsResult, Tool
from pydantic import BaseModel
from restate.ext.openai import DurableRunner, raise_terminal_errors, restate_context

from app.advanced.tool_approval_agent import run_with_approvals
from app.runtime.settings import LLM_RETRY, MAX_TURNS, MODEL
from app.utils.claims import InsuranceClaim

MCP_RETRY: restate.RunOptions[Any] = restate.RunOptions(
    max_attempts=3, initial_retry_interval=timedelta(milliseconds=500)
)


class ClaimChecksServer:
    """The endpoint's one connection to the claim checks MCP server, started on first use.

    The connection is opened and closed by a task of its own (the MCP client's task group must be
    entered and left by the same task); invocations share it. If the server dies, the next call
    fails (its step is retried) and starts it again.
    """

    def __init__(self) -> None:
        self.server: MCPServerStdio | None = None
        self.owner: asyncio.Task[None] | None = None
        self.lock = asyncio.Lock()

    async def get(self) -> MCPServerStdio:
        async with self.lock:
            if self.server is None or self.owner is None or self.owner.done():
                ready: asyncio.Future[MCPServerStdio] = asyncio.get_running_loop().create_future()
                self.owner = asyncio.create_task(self._own(ready))
                self.server = await ready
            return self.server

    async def _own(self, ready: asyncio.Future[MCPServerStdio]) -> None:
        server = MCPServerStdio(
            params={"command": sys.executable, "args": ["-m", "app.utils.claim_checks_mcp"]},
            name="claim-checks",
            client_session_timeout_seconds=30,
        )
        try:
            async with server:
                ready.set_result(server)
                await asyncio.Event().wait()  # until the endpoint stops (the task is cancelled)
        except Exception as e:
            if not ready.done():
                ready.set_exception(e)
            raise

    def reset(self) -> None:
        """Forget a broken connection: the next call starts the server again."""
        if self.owner is not None:
            self.owner.cancel()
        self.server, self.owner = None, None


claim_checks = ClaimChecksServer()


class McpTools(BaseModel):
    """The tool list, as journaled."""

    tools: list[Tool]


class JournaledMcpServer(MCPServer):
    """An MCP server for the Agents SDK whose tool list and tool calls are durable steps.

    Unlike a function tool, an MCP call gets no run context from the Agents SDK: the steps reach
    the Restate context with `restate_context()`, the invocation's own."""

    def __init__(self, live: ClaimChecksServer, tool_names: set[str], require_approval: Any = None) -> None:
        # A step that failed for good ends the invocation (TerminalError), not a hint to the model.
        super().__init__(failure_error_function=raise_terminal_errors, require_approval=require_approval)
        self.live = live
        self.tool_names = tool_names  # the server's tools this agent may use
        self.tools: list[Tool] | None = None  # this invocation's, once journaled

    @property
    def name(self) -> str:
        return "claim-checks"

    async def connect(self) -> None:
        pass  # the steps reach the shared connection when they run; a replay needs none

    async def cleanup(self) -> None:
        pass

    async def _live(self) -> MCPServer:
        return await self.live.get()

    async def list_tools(self, run_context: Any = None, agent: Any = None) -> list[Tool]:
        if self.tools is None:

            async def fetch() -> McpTools:
                try:
                    return McpTools(tools=await (await self._live()).list_tools())
                except Exception:
                    self.live.reset()
                    raise

            listed = await restate_context().run_typed("MCP list tools", fetch, MCP_RETRY)
            self.tools = [tool for tool in listed.tools if tool.name in self.tool_names]
        return self.tools

    async def call_tool(
        self, tool_name: str, arguments: dict[str, Any] | None, meta: dict[str, Any] | None = None
    ) -> CallToolResult:
        async def call() -> CallToolResult:
            try:
                return await (await self._live()).call_tool(tool_name, arguments)
            except Exception:
                self.live.reset()
                raise

        return await restate_context().run_typed(f"MCP {tool_name}", call, MCP_RETRY)

    async def list_prompts(self) -> ListPromptsResult:
        return ListPromptsResult(prompts=[])

    async def get_prompt(self, name: str, arguments: dict[str, Any] | None = None) -> GetPromptResult:
        raise restate.TerminalError(f"The claim checks MCP server has no prompt {name!r}")


CHECKS = {"check_eligibility", "compare_to_standard_rates", "check_fraud"}


def mcp_claim_agent(pays: bool = False) -> Agent[restate.Context]:
    """The agent, with this invocation's journaled view of the MCP server; `pays`: with the
    server's `pay_claim` too, which a person must approve every time (the SDK's MCP policy)."""
    task = "then pay it with pay_claim if it is approved" if pays else "then decide whether to approve it"
    server = (
        JournaledMcpServer(claim_checks, CHECKS | {"pay_claim"}, require_approval={"pay_claim": "always"})
        if pays
        else JournaledMcpServer(claim_checks, CHECKS)
    )
    return Agent[restate.Context](
        name="McpClaimAgent",
        instructions=f"You are a claim analysis agent that analyzes insurance claims. Use your tools to check the claim, {task}.",
        mcp_servers=[server],
        model_settings=ModelSettings(parallel_tool_calls=False),
        model=MODEL,
    )


agent_service = restate.Service("McpClaimAgent")


@agent_service.handler()
async def run(restate_context: restate.Context, claim: InsuranceClaim) -> str:
    result = await DurableRunner.run(
        mcp_claim_agent(),
        f"Analyze the claim {claim.model_dump_json(by_alias=True)}",
        context=restate_context,
        run_options=LLM_RETRY,
        max_turns=MAX_TURNS,
    )
    return str(result.final_output)


@agent_service.handler()
async def pay(restate_context: restate.Context, claim: InsuranceClaim) -> str:
    """Check the claim, then pay it: the payout waits for a person's approval (the reviewers' inbox)."""
    prompt = f"Analyze and pay the claim {claim.model_dump_json(by_alias=True)}"
    result = await run_with_approvals(restate_context, mcp_claim_agent(pays=True), prompt)
    return str(result.final_output)
