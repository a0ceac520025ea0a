"""The playground's web server: one page and a small JSON API, on 127.0.0.1 by default.

    GET  /              the page: HTML with its CSS and JS inline (nothing from a CDN)
    GET  /api/models    {"models": [{name, kind, mode, modes}], "defaults": PlaySettings}
    POST /api/generate  {model, mode, messages, settings} -> NDJSON, one event a line:
                        {"event": "piece", "text"}... then {"event": "done", "finish_reason",
                        "tokens", "seconds", "replaced"} or {"event": "error", "message"}
    POST /api/classify  {model, text} -> {"labels": [{"label", "probability"}]}

Starlette and uvicorn rather than Gradio: the page is one small file we control (so it works
offline and shows model output only as text), the API streams plain NDJSON that a test can
read, and the two libraries are small and already in the environment. Only this machine's
pages may call the API: requests must name this server in `Host` (against DNS rebinding),
and POSTs must be JSON from this origin (a foreign page cannot send them without a CORS
preflight, which is never granted). A failure in one answer is one error event; the server
keeps serving.
"""

import errno
import json
import logging
import secrets
import socket
import sys
from collections.abc import AsyncIterator
from importlib.resources import files
from ipaddress import ip_address

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from factory.errors import KahaniError
from factory.providers.base import GenerationParams
from factory.streaming import Finish
from judge.play.backends import ClassifyRequest, GenerateRequest, PlayModel
from judge.play.settings import PlaySettings

log = logging.getLogger(__name__)


def page(nonce: str) -> str:
    """The page, its stylesheet and script pasted in, allowed by a per-start nonce."""
    static = files("judge.play")
    html = static.joinpath("page.html").read_text(encoding="utf-8")
    for name in ("page.css", "page.js"):
        html = html.replace(f"/*{name}*/", static.joinpath(name).read_text(encoding="utf-8"))
    return html.replace("{nonce}", nonce)


def make_app(models: list[PlayModel], defaults: PlaySettings, hosts: set[str] | None) -> ASGIApp:
    """The ASGI app for `models`; `hosts` are the host:port names it answers to (None: any,
    for a server bound to every interface)."""
    nonce = secrets.token_urlsafe(16)
    html = page(nonce)
    policy = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )

    async def index(_: Request) -> Response:
        return HTMLResponse(html, headers={"content-security-policy": policy})

    async def list_models(_: Request) -> Response:
        return JSONResponse(
            {"models": [m.describe() for m in models], "defaults": defaults.model_dump()}
        )

    async def generate(request: Request) -> Response:
        ask = await _parsed(request, GenerateRequest)
        if isinstance(ask, Response):
            return ask
        model = _model(models, ask.model)
        if model is None or model.streamer is None:
            return _refusal(f"model {ask.model} does not generate text")
        params = GenerationParams(
            model=model.name,
            temperature=ask.settings.temperature,
            top_k=ask.settings.top_k,
            top_p=ask.settings.top_p,
            max_tokens=ask.settings.max_tokens,
            seed=ask.settings.seed,
            continuation=ask.mode == "story",
        )
        events = _events(model, list(ask.messages), params)
        return StreamingResponse(events, media_type="application/x-ndjson")

    async def classify(request: Request) -> Response:
        import asyncio

        ask = await _parsed(request, ClassifyRequest)
        if isinstance(ask, Response):
            return ask
        model = _model(models, ask.model)
        if model is None or model.classifier is None:
            return _refusal(f"model {ask.model} is not a classifier")
        try:
            labels = await asyncio.to_thread(model.classifier.classify, ask.text)
        except KahaniError as err:
            return _refusal(str(err))
        except Exception as err:  # a broken model: say so, keep serving
            log.exception("classifier %s failed", model.name)
            return _refusal(f"classification failed: {type(err).__name__}: {err}", 500)
        return JSONResponse(
            {"labels": [{"label": x.name, "probability": x.probability} for x in labels]}
        )

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/api/models", list_models),
            Route("/api/generate", generate, methods=["POST"]),
            Route("/api/classify", classify, methods=["POST"]),
        ]
    )
    return _SameOrigin(app, hosts)


async def _events(model: PlayModel, messages: list, params: GenerationParams) -> AsyncIterator[str]:
    """The NDJSON lines of one answer; any failure becomes the last line."""
    assert model.streamer is not None
    try:
        async for item in model.streamer.stream(messages, params):
            if isinstance(item, Finish):
                yield _line(
                    event="done",
                    finish_reason=item.reason,
                    tokens=item.tokens,
                    seconds=round(item.seconds, 3),
                    replaced=item.replaced,
                )
            else:
                yield _line(event="piece", text=item.text)
    except KahaniError as err:
        yield _line(event="error", message=str(err))
    except Exception as err:  # a bug: logged in full, one line for the page, still serving
        log.exception("answer from %s failed", model.name)
        yield _line(event="error", message=f"{model.name} failed: {type(err).__name__}: {err}")


def _line(**event: object) -> str:
    return json.dumps(event, ensure_ascii=False) + "\n"


def _model(models: list[PlayModel], index: int) -> PlayModel | None:
    return models[index] if index < len(models) else None


def _refusal(message: str, status: int = 400) -> Response:
    return JSONResponse({"error": message}, status_code=status)


async def _parsed(request: Request, shape: type) -> object:
    """The request body as `shape`, or a 400/415 answer saying what is wrong."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return _refusal("send JSON (content-type: application/json)", 415)
    try:
        return shape.model_validate_json(await request.body())
    except ValidationError as err:
        problem = err.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]).removeprefix("settings.")
        given = problem.get("input")
        shown = "" if isinstance(given, dict | list) or given is None else f" (got {given!r})"
        message = problem["msg"][0].lower() + problem["msg"][1:]
        return _refusal(f"{where}: {message}{shown}" if where else message)


class _SameOrigin:
    """Answers only requests addressed to one of its host names, and POSTs only from a page
    of the same origin (a browser names the page's origin in `Origin`)."""

    def __init__(self, app: ASGIApp, hosts: set[str] | None) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host, origin = headers.get("host", ""), headers.get("origin")
        if self.hosts is not None and host not in self.hosts:
            response: Response = _refusal("unknown host", 421)
        elif scope["method"] == "POST" and origin is not None and origin != f"http://{host}":
            response = _refusal("cross-origin requests are refused", 403)
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free one); KahaniError when taken."""
    try:
        family = socket.AF_INET6 if ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET  # a name such as localhost
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise KahaniError(
                f"port {port} on {host} is in use (another playground?); pass --port N, or "
                "--port 0 for any free port"
            ) from None
        raise KahaniError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    sock.listen(128)
    return sock


def host_names(host: str, port: int) -> set[str] | None:
    """The `Host` values a browser sends this server: its address, and for loopback the other
    loopback names; None (any) when it listens on every interface, whose names it cannot know."""
    if ip_address(host).is_unspecified:  # host is the bound socket's address
        return None
    shown = f"[{host}]" if ":" in host else host
    names = {shown}
    if ip_address(host).is_loopback:
        names |= {"127.0.0.1", "localhost", "[::1]"}
    return {f"{name}:{port}" for name in names}


def serve(models: list[PlayModel], defaults: PlaySettings, sock: socket.socket) -> None:
    """Serve until Ctrl-C or SIGTERM."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    app = make_app(models, defaults, host_names(host, port))
    shown = f"[{host}]" if ":" in host else host
    print(f"playground  http://{shown}:{port}/  (Ctrl-C stops)", flush=True)
    if not ip_address(host).is_loopback:  # getsockname gives an address, never a name
        print(
            f"warning: serving on {host}: anyone who can reach this machine can use these models",
            file=sys.stderr,
            flush=True,
        )
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2, access_log=False
    )
    uvicorn.Server(config).run(sockets=[sock])
