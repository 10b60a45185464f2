"""The order of a turn's tool calls when some of them never run (tool approvals, tool guardrails).

restate-sdk's `DurableRunner` runs the tool calls of one LLM answer one at a time, in the answer's
order (a turnstile over the call ids), so that their journal entries come in the same order on
every replay. It expects every call to reach its tool. With the Agents SDK's tool approvals and
tool guardrails some never do: a call that waits for a person's approval, a rejected one, one
that a tool input guardrail refused; so do calls of a tool the agent does not have. The calls
after such a call would wait for their turn forever. Here a call that will not run gives up its
turn (`OrderedCalls.skip`), decided where the Agents SDK decides it:

- after each journaled answer: calls of tools that are not the agent's (unknown, handoffs, MCP),
  of tools that always need approval, and of tools whose approval policy the SDK cannot ask
  (arguments that are not a JSON object) never run in this turn;
- a `needs_approval` policy that answers True, a tool input guardrail that does not allow: skip;
- a run resumed from a RunState runs the approved calls, in order, and nothing else.

The fix we would propose upstream: the turnstile advanced by the Agents SDK's own verdict.
"""

import dataclasses
import json
from typing import Any

from agents import Agent, FunctionTool, RunContextWrapper
from agents.tool_guardrails import ToolGuardrailFunctionOutput, ToolInputGuardrail, ToolInputGuardrailData
from restate.ext.openai.models import State
from restate.ext.turnstile import Turnstile


class OrderedCalls(Turnstile):
    """restate's turnstile, where a call that will not run passes its turn on."""

    def __init__(self, ids: list[str]) -> None:
        super().__init__(ids)
        self.passed: set[str] = set()

    def skip(self, call_id: str) -> None:
        if call_id not in self.events or call_id in self.passed:
            return
        self.passed.add(call_id)
        if self.events[call_id].is_set():  # its turn already: the next one's now
            self.allow_next_after(call_id)

    def allow_next_after(self, id: str) -> None:
        next_id = self.turns.get(id)
        while next_id is not None:
            self.events[next_id].set()
            if next_id not in self.passed:
                return
            next_id = self.turns.get(next_id)

    async def wait_for(self, id: str) -> None:
        # A call left out of the order (a tool always approved earlier in a resumed run) runs as it comes.
        if id in self.events:
            await super().wait_for(id)


def calls_in_order(output: list[Any], own_tools: dict[str, FunctionTool]) -> OrderedCalls:
    """The turnstile for one journaled answer: its calls that may run, in the answer's order
    (`own_tools`: the agents' function tools, which restate orders; MCP tools are not among them)."""
    ids = []
    for item in output:
        tool = own_tools.get(getattr(item, "name", None) or "") if item.type == "function_call" else None
        if tool is None or tool.needs_approval is True:
            continue
        if callable(tool.needs_approval) and not _json_object(item.arguments):
            continue  # the SDK asks a person without asking the policy
        ids.append(item.call_id)
    return OrderedCalls(ids)


def _json_object(arguments: str) -> bool:
    try:
        return isinstance(json.loads(arguments or "{}"), dict)
    except ValueError:
        return False


def with_skips(agent: Agent[Any], state: State) -> list[Any]:
    """`agent`'s tools, with approval policies and input guardrails that pass a refused call's turn on."""
    return [_skipping(tool, state) if isinstance(tool, FunctionTool) else tool for tool in agent.tools]


def _skipping(tool: FunctionTool, state: State) -> FunctionTool:
    changes: dict[str, Any] = {}
    policy = tool.needs_approval
    if callable(policy):

        async def needs_approval(
            context: RunContextWrapper[Any], params: dict[str, Any], call_id: str
        ) -> bool:
            verdict = policy(context, params, call_id)
            needed = bool(await verdict if hasattr(verdict, "__await__") else verdict)
            if needed:
                _skip(state, call_id)
            return needed

        changes["needs_approval"] = needs_approval
    if tool.tool_input_guardrails:
        changes["tool_input_guardrails"] = [_guard(g, state) for g in tool.tool_input_guardrails]
    return dataclasses.replace(tool, **changes) if changes else tool


def _guard(guardrail: ToolInputGuardrail[Any], state: State) -> ToolInputGuardrail[Any]:
    async def check(data: ToolInputGuardrailData) -> ToolGuardrailFunctionOutput:
        output = await guardrail.run(data)
        if output.behavior["type"] != "allow":
            _skip(state, data.context.tool_call_id)
        return output

    return ToolInputGuardrail(guardrail_function=check, name=guardrail.get_name())


def _skip(state: State, call_id: str) -> None:
    if isinstance(state.turnstile, OrderedCalls):
        state.turnstile.skip(call_id)
