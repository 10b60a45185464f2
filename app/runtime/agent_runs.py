"""What every agent run of the endpoint gets, whichever tour file starts it.

A tour file calls `DurableRunner.run(...)` (restate.ext.openai), which calls the Agents SDK's
`Runner.run`, which hands the run to the SDK's default agent runner. The endpoint installs
`DurableAgentRuns` as that runner (`install_agent_runs`, in app/__main__.py), so that inside a
Restate handler every run:

- ends when the model misbehaves, answered or with a terminal error that says what the model
  did (the table: README.md, "When the model misbehaves"); a journaled answer would fail the same
  way on every retry, so nothing is left to Restate's retries;
- keeps every LLM call in the journal: an agent whose model is a `Model` instance rather than a
  name is wrapped like the named ones;
- checks, before each LLM call, that its tenant's budget allows it (`before_llm_call`, which the
  manual loop calls too);
- tallies its LLM usage from the journaled answers and sends it to the cost ledger once, when it
  ends (one journaled one-way call per run; a run started inside another, e.g. by a guardrail,
  adds to the outer run's tally); each answer is journaled with the invocation that made it, so
  that a run restarted from a copy of another's journal counts only the calls it made itself.

Outside a Restate handler (a test, a script) it is the SDK's runner, unchanged.
"""

import contextvars
import dataclasses
import functools
import json
from collections import Counter
from typing import Any, cast

from agents import (
    Agent,
    FunctionTool,
    Handoff,
    HandoffCallItem,
    InputGuardrailTripwireTriggered,
    Model,
    ModelBehaviorError,
    ModelProvider,
    ModelResponse,
    OutputGuardrailTripwireTriggered,
    RunConfig,
    RunErrorHandlerInput,
    RunErrorHandlers,
    RunResult,
    RunState,
    ToolCallItem,
    ToolCallOutputItem,
    ToolInputGuardrailTripwireTriggered,
    ToolOutputGuardrailTripwireTriggered,
    TResponseInputItem,
)
from agents.models.multi_provider import MultiProvider
from agents.run import AgentRunner, set_default_agent_runner
from agents.run_config import CallModelData, ModelInputData
from pydantic_core import from_json
from restate import RunOptions, TerminalError
from restate.exceptions import RetryableError
from restate.ext.openai.functions import wrap_agent_tools
from restate.ext.openai.models import RestateModelResponse, State
from restate.ext.openai.runner_wrapper import DurableModelCalls, RestateModelWrapper
from restate.extensions import current_context
from restate.serde import PydanticJsonSerde

from app.runtime.invocation import invocation_id
from app.runtime.llm_client import ModelMisbehaved
from app.runtime.settings import LLM_RETRY, MODEL
from app.runtime.tool_order import OrderedCalls, calls_in_order, with_skips
from app.runtime.usage import BeforeLlmCall, UsageRecorder, UsageTally, install_before_llm_call

EMPTY_ANSWER = "The model gave an empty answer (no text and no tool call)."

# A request that a guardrail refuses: it cannot be processed as asked (Unprocessable Content).
GUARDRAIL_STATUS = 422

# The tally of the run in progress, shared with the runs it starts (guardrail agents).
_run_tally: contextvars.ContextVar[UsageTally | None] = contextvars.ContextVar("run_tally", default=None)


# --- every LLM call journaled, and tallied -------------------------------------------------------------


class AnswerByAlias(PydanticJsonSerde[RestateModelResponse]):
    """The journaled answer, written with the API's own field names (`async`, not `async_`), and
    the invocation that made it (`made_by`, read back into `last_made_by`).

    restate's serde writes the Python names; read back, such a name is an extra key beside the
    field, which the Agents SDK then refuses to copy into a RunState (tool approvals).

    Read back without caching its strings: an answer's ids (response, call, item) are new every
    time, and pydantic's cache of JSON strings would keep ~1.5 MB of them in every endpoint process.
    Parsed first and validated as Python, it also takes half the time (~0.1 ms against ~0.2 ms)."""

    def __init__(self) -> None:
        super().__init__(RestateModelResponse)
        self.last_made_by: str | None = None

    def serialize(self, obj: RestateModelResponse | None) -> bytes:
        if obj is None:
            return b""
        # (Serialized only when the call was made: a replay reads the journal instead.)
        made_by = json.dumps(invocation_id() or "")
        return obj.model_dump_json(by_alias=True).encode()[:-1] + f',"made_by":{made_by}}}'.encode()

    def deserialize(self, buf: bytes) -> RestateModelResponse | None:
        if not buf:
            return None
        data = from_json(buf, cache_strings="keys")
        self.last_made_by = data.pop("made_by", None) or None
        return RestateModelResponse.model_validate(data)


class JournaledModel(RestateModelWrapper):
    """Restate's journaled `call LLM` step, adding each journaled answer's usage to the run's tally
    (on a replay too: the tally is rebuilt from the journal)."""

    def __init__(self, model: Model, name: str, models: "JournaledModels") -> None:
        self.answers = AnswerByAlias()
        super().__init__(model, models.state, dataclasses.replace(models.options, serde=self.answers))
        self.name, self.tally, self.own_tools = name, models.tally, models.own_tools

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        if (restate_context := current_context()) is not None:
            # May end the run before the call (its tenant's budget): a journaled decision.
            await self.tally.before_llm_call(restate_context)
        try:
            response = await super().get_response(*args, **kwargs)
        except TerminalError as e:
            self.tally.reraise_counting_bill(e)  # a cut-off answer is billed too: counted
        usage, made_by = response.usage, self.answers.last_made_by
        self.tally.add(self.name, usage.input_tokens, usage.output_tokens, made_by=made_by)
        # The turn's calls that may run, in order (restate's turnstile expects all of them to).
        self.state.turnstile = calls_in_order(response.output, self.own_tools)
        return response


class JournaledModels(ModelProvider):
    """The run's models, each call a `JournaledModel` (same journal, same turnstile as restate's
    own); a `Model` instance is journaled the same way (`journaled`)."""

    def __init__(
        self, source: ModelProvider, state: State, options: RunOptions[Any], tally: UsageTally
    ) -> None:
        self.source, self.state, self.options, self.tally = source, state, options, tally
        # The tools of the run's agents by name: the ones restate orders (not MCP tools).
        self.own_tools: dict[str, FunctionTool] = {}

    @classmethod
    def for_run(
        cls, agent: Agent[Any], run_config: RunConfig, tally: UsageTally
    ) -> "tuple[JournaledModels, Agent[Any]]":
        """The models of a run, and its agent: as `DurableRunner.run` set them up, or, for a plain
        `Runner.run` inside a handler (an agent used as a tool, say), set up the same way here:
        tools in turn order, its provider's models journaled, with the tour's bounded attempts."""
        provider = run_config.model_provider
        if isinstance(provider, DurableModelCalls):
            # Restate's provider finds the model, before it would wrap it: wrapped here instead.
            return cls(_FirstOf(provider), provider.state, provider.llm_retry_opts, tally), agent
        state = State()
        return cls(provider, state, LLM_RETRY, tally), wrap_agent_tools(agent, state)

    def get_model(self, model_name: str | None) -> Model:
        return self.journaled(self.source.get_model(model_name or None), model_name or MODEL)

    def journaled(self, model: Model, name: str | None = None) -> Model:
        if isinstance(model, RestateModelWrapper):
            return model
        return JournaledModel(model, name or _model_name(model), self)


class _FirstOf(ModelProvider):
    """The model restate's `DurableModelCalls` finds (a `MultiProvider`), not yet wrapped."""

    def __init__(self, durable: DurableModelCalls) -> None:
        self.durable = durable

    def get_model(self, model_name: str | None) -> Model:
        return MultiProvider.get_model(self.durable, model_name)


def _model_name(model: Any) -> str:
    """The name behind a `Model` instance (OpenAIResponsesModel and wrappers keep it as `.model`)."""
    for _ in range(5):
        model = getattr(model, "model", None)
        if isinstance(model, str):
            return model
    return MODEL


def _with_journaled_models(agent: Agent[Any], models: JournaledModels) -> Agent[Any]:
    """`agent` and its handoffs, with every `Model` instance journaled (names already are), and
    tools whose refused calls give up their turn (app/runtime/tool_order.py)."""
    handoffs = [
        _with_journaled_models(h, models) if isinstance(h, Agent) else _journaled_handoff(h, models)
        for h in agent.handoffs
    ]
    model = models.journaled(agent.model) if isinstance(agent.model, Model) else agent.model
    tools = with_skips(agent, models.state)
    models.own_tools.update((tool.name, tool) for tool in tools if isinstance(tool, FunctionTool))
    unchanged = all(
        new is old for new, old in zip([*handoffs, *tools], [*agent.handoffs, *agent.tools], strict=True)
    )
    if model is agent.model and unchanged:
        return agent
    return agent.clone(model=model, handoffs=handoffs, tools=tools)


def _journaled_handoff(handoff: Handoff[Any, Any], models: JournaledModels) -> Handoff[Any, Any]:
    invoke = handoff.on_invoke_handoff

    async def on_invoke_handoff(*args: Any, **kwargs: Any) -> Agent[Any]:
        return _with_journaled_models(await invoke(*args, **kwargs), models)

    return dataclasses.replace(handoff, on_invoke_handoff=on_invoke_handoff)


# --- a misbehaving model ------------------------------------------------------------------------------


def without_nulls(data: CallModelData[Any]) -> ModelInputData:
    """The model's input without `null` fields, as the API's schema has them: absent, not null.

    A journaled LLM answer comes back from Restate with every optional field present, as `null`
    (e.g. a function call's `namespace`), and the Agents SDK sends such items back as the next
    turn's input; the published schema types these fields as strings.
    """
    items = [
        {key: value for key, value in item.items() if value is not None} if isinstance(item, dict) else item
        for item in data.model_data.input
    ]
    return ModelInputData(
        input=cast(list[TResponseInputItem], items), instructions=data.model_data.instructions
    )


def describe_tool_calls(items: list[Any], known_tools: set[str]) -> str:
    """`get_weather x10` or `unknown tool 'x' x3, get_weather x2 (invalid arguments x2)`; handoffs
    count as the calls they are (`transfer_to_intakeagent x2`)."""
    outputs = {
        _raw(item, "call_id"): str(item.output) for item in items if isinstance(item, ToolCallOutputItem)
    }
    calls: Counter[str] = Counter()
    invalid: Counter[str] = Counter()
    ran: set[str] = set()  # tools the SDK found, the agent's MCP tools among them
    for item in items:
        if not isinstance(item, ToolCallItem | HandoffCallItem):
            continue
        name = str(_raw(item, "name") or "?")
        calls[name] += 1
        output = outputs.get(_raw(item, "call_id"))
        if output is not None and output != f"Tool '{name}' not found.":  # the SDK's words
            ran.add(name)
        if _invalid_arguments(output or ""):
            invalid[name] += 1
    parts = []
    for name, count in calls.most_common():
        label = name if name in known_tools or name in ran else f"unknown tool {name!r}"
        bad = f" (invalid arguments x{invalid[name]})" if invalid[name] else ""
        parts.append(f"{label} x{count}{bad}")
    return ", ".join(parts) or "no tool"


def _invalid_arguments(output: str) -> bool:
    """A tool's output that refuses its arguments: the Agents SDK's words for a function tool, the
    MCP SDK's for an MCP tool (its pydantic validation error, as the tool's error result)."""
    return output.startswith("An error occurred while calling the tool") or (
        "Error executing tool" in output and "validation error for" in output
    )


def _raw(item: Any, key: str) -> Any:
    raw = item.raw_item
    return raw.get(key) if isinstance(raw, dict) else getattr(raw, key, None)


def _tool_names(agent: Agent[Any]) -> set[str]:
    names = {getattr(tool, "name", "") for tool in agent.tools}
    for target in agent.handoffs:
        names.add(target.tool_name if isinstance(target, Handoff) else Handoff.default_tool_name(target))
    return names


def _max_turns(max_turns: int | None, data: RunErrorHandlerInput[Any]) -> Any:
    what = describe_tool_calls(data.run_data.new_items, _tool_names(data.run_data.last_agent))
    if what == "no tool":
        # Turns without a tool call and without an answer: an agent with an output type is asked
        # again after an empty answer, until the turns run out.
        raise ModelMisbehaved(EMPTY_ANSWER)
    raise ModelMisbehaved(
        f"The model called tools for {max_turns} turns without answering ({what}); giving up."
    )


def _refusal(data: RunErrorHandlerInput[Any]) -> Any:
    refusal = getattr(data.error, "refusal", "")
    raise ModelMisbehaved(f"The model refused to answer: {refusal!r}")


def guardrail_tripped(
    error: InputGuardrailTripwireTriggered | OutputGuardrailTripwireTriggered,
) -> TerminalError:
    """`Input guardrail 'is_insurance_claim' tripped: <reason>`, as a terminal 422: its verdict is
    journaled, so a retry could only trip it again."""
    kind = "Input" if isinstance(error, InputGuardrailTripwireTriggered) else "Output"
    result = error.guardrail_result
    info = result.output.output_info
    reason = info if isinstance(info, str) else getattr(info, "reason", None) or "no reason given"
    return TerminalError(
        f"{kind} guardrail '{result.guardrail.get_name()}' tripped: {reason}", status_code=GUARDRAIL_STATUS
    )


def _resume_with(state: RunState[Any], agent: Agent[Any], journaled: State) -> None:
    """A run resumed from `state` (after tool approvals) goes on with the agent it stopped at (the
    approvals belong to that object), given this run's tools, model and handoffs: those that
    journal into this run and keep its turn order, where the calls now approved run in order."""
    current = state._current_agent  # the previous run's copy of the agent, never the tour's own
    if current is None or current.name != agent.name:
        raise TerminalError(
            f"Cannot resume agent {current.name if current else '?'} from a RunState: resume the "
            f"run from the agent it stopped at ({agent.name} was given)",
            status_code=500,
        )
    current.tools, current.handoffs, current.model = agent.tools, agent.handoffs, agent.model
    context = state._context
    approved = [
        item.call_id
        for item in state.get_interruptions()
        if context is not None and context.is_tool_approved(item.tool_name or "", item.call_id or "")
    ]
    journaled.turnstile = OrderedCalls([call_id for call_id in approved if call_id])


def _with_policy(run_config: RunConfig, models: JournaledModels) -> RunConfig:
    """The run's config with `models` (a `Model` instance in it journaled too), and the model told
    about a tool it invented, instead of the run failing on the spot."""
    model = models.journaled(run_config.model) if isinstance(run_config.model, Model) else run_config.model
    return dataclasses.replace(
        run_config,
        model_provider=models,
        model=model,
        tool_not_found_behavior="return_error_to_model",
        call_model_input_filter=run_config.call_model_input_filter or without_nulls,
    )


def tool_guardrail_tripped(
    error: ToolInputGuardrailTripwireTriggered | ToolOutputGuardrailTripwireTriggered,
) -> TerminalError:
    """`Tool input guardrail 'payout_within_limit' tripped: <message>`, as a terminal 422."""
    kind = "input" if isinstance(error, ToolInputGuardrailTripwireTriggered) else "output"
    reason = error.output.output_info or "no reason given"
    return TerminalError(
        f"Tool {kind} guardrail '{error.guardrail.get_name()}' tripped: {reason}",
        status_code=GUARDRAIL_STATUS,
    )


def _final(error: Exception, agent: Agent[Any]) -> TerminalError | None:
    """The terminal error a run's failure ends the invocation with; None: not final (retried)."""
    if isinstance(error, InputGuardrailTripwireTriggered | OutputGuardrailTripwireTriggered):
        return guardrail_tripped(error)
    if isinstance(error, ToolInputGuardrailTripwireTriggered | ToolOutputGuardrailTripwireTriggered):
        return tool_guardrail_tripped(error)
    if isinstance(error, ModelBehaviorError):
        # e.g. text that is not the JSON of the agent's output_type: the journaled answer would
        # fail the same way on every retry.
        detail = str(error) if len(str(error)) <= 300 else str(error)[:300] + "..."
        return ModelMisbehaved(
            f"The model's answer does not fit the agent's output type ({agent.name}): {detail}"
        )
    # The Agents SDK wraps a tool's error (`UserError: Error running tool ...`); the Restate SDK
    # looks behind it for the TerminalError (a cancellation, say), and so does this.
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, RetryableError):
        if isinstance(cause, TerminalError):
            return cause
        cause = cause.__cause__
    return None


# --- the runner ---------------------------------------------------------------------------------------


class DurableAgentRuns(AgentRunner):
    """The Agents SDK's runner, with the above for every run inside a Restate handler."""

    def __init__(self, record_usage: UsageRecorder | None = None) -> None:
        super().__init__()
        self.record_usage = record_usage

    async def run(self, starting_agent: Agent[Any], input: Any, **kwargs: Any) -> RunResult:
        try:
            restate_context = current_context()
        except LookupError:  # (never set in this thread: not a Restate handler either)
            restate_context = None
        if restate_context is None:
            return await super().run(starting_agent, input, **kwargs)
        outer_tally = _run_tally.get()
        tally = outer_tally or UsageTally()
        token = _run_tally.set(tally)
        try:
            given = kwargs.get("run_config")
            run_config = RunConfig(**given) if isinstance(given, dict) else given or RunConfig()
            models, starting_agent = JournaledModels.for_run(starting_agent, run_config, tally)
            kwargs["run_config"] = _with_policy(run_config, models)
            handlers: RunErrorHandlers[Any] = {
                "max_turns": functools.partial(_max_turns, kwargs.get("max_turns")),
                "model_refusal": _refusal,
            }
            kwargs["error_handlers"] = {**handlers, **(kwargs.get("error_handlers") or {})}
            agent = _with_journaled_models(starting_agent, models)
            if isinstance(input, RunState):
                _resume_with(input, agent, models.state)
            result = await super().run(agent, input, **kwargs)
            # (A run that stopped on tool approvals has no answer yet: the caller resumes it.)
            if not result.interruptions and (
                result.final_output is None
                or (isinstance(result.final_output, str) and not result.final_output.strip())
            ):
                raise ModelMisbehaved(EMPTY_ANSWER)
        except Exception as e:
            final = _final(e, starting_agent)
            if final is None:
                raise  # not the run's end: an attempt that Restate retries, replaying what is done
            if outer_tally is None:
                self._record(restate_context, tally)
            if final is e:
                raise
            # A new error (a tripped guardrail, say) comes from `e`; one that was raised before and
            # wrapped by the Agents SDK is raised again as it was (from `e` would make a cycle).
            raise final from (None if final.__traceback__ is not None else e)
        finally:
            _run_tally.reset(token)
        if outer_tally is None:
            self._record(restate_context, tally)
        return result

    def _record(self, restate_context: Any, tally: UsageTally) -> None:
        if self.record_usage is not None:
            self.record_usage(restate_context, tally)


def latest_answer_made_here() -> bool:
    """Whether the latest LLM answer of the agent run in progress was made by this invocation,
    not copied from the one it was restarted from: every command after it is this run's own."""
    tally = _run_tally.get()
    return tally is not None and tally.made_here()


def install_agent_runs(
    record_usage: UsageRecorder | None = None, before_llm_call: BeforeLlmCall | None = None
) -> None:
    """Make `DurableAgentRuns` the runner of every `Runner.run` (and so `DurableRunner.run`);
    `before_llm_call` runs before each of their LLM calls."""
    install_before_llm_call(before_llm_call)
    set_default_agent_runner(DurableAgentRuns(record_usage))
