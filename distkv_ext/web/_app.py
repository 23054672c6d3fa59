"""The status page as an ASGI application (Starlette): `make_app`.

Pages are rendered on the server (Jinja2, every value escaped), so they
read without JavaScript; ``/static/live.js`` then keeps them up to date
from ``/events`` (server-sent events: the jobs and sections that changed,
rendered by the same templates).  The JSON API and ``/metrics`` read the
same `StatusModel`.  Every response forbids inline script and framing
(Content-Security-Policy); bound to loopback, only requests naming a
loopback host are served (against DNS rebinding).
"""

import functools
import json
import logging
import time
from collections.abc import Callable
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs

import anyio
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from distkv_ext.codekit.core.errors import CodeError

from ._actions import ACTIONS
from ._metrics import CONTENT_TYPE, metrics_text
from ._model import StatusModel
from ._security import COOKIE, Guard
from ._views import (
    errors,
    job_detail,
    job_key,
    job_list,
    job_rows,
    members,
    plain,
    procedures,
    ref_from_query,
    sort_key,
    summary,
)

logger = logging.getLogger(__name__)

__all__ = ["make_app", "host_name", "COALESCE", "PING"]

#: Seconds an event stream waits after a change for more to come (one
#: message for a burst of changes).
COALESCE = 0.05
#: Seconds between keep-alive comments on a quiet event stream.
PING = 15.0

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self';"
    " form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
LOOPBACK = ("localhost", "127.0.0.1", "::1")


def _hms(t: Any) -> str:
    try:
        return time.strftime("%H:%M:%S", time.localtime(float(t))) if t else ""
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


def _rel(t: Any, now: float) -> str:
    try:
        d = float(t) - now
    except (TypeError, ValueError):
        return ""
    return f"in {d:.0f} s" if d >= 0.5 else f"{-d:.0f} s ago"


def host_name(header: str) -> str:
    """The host of a ``Host`` header, without the port (``[::1]:80`` -> ``::1``)."""
    h = header.strip().lower()
    if h.startswith("["):
        return h[1:].partition("]")[0]
    return h.rpartition(":")[0] if h.count(":") == 1 else h


class _Guarded:
    """Security headers on every response; no token in any URL; bound to
    loopback, only loopback host names (a page of another site that
    makes its name point at 127.0.0.1 gets nothing: DNS rebinding)."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str] | None) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refuse = None
        if "token" in parse_qs(scope.get("query_string", b"").decode("latin-1")):
            refuse = JSONResponse({"error": "never put the token in a URL; it was not used"}, status_code=400)
        elif self.hosts is not None:
            host = dict(scope.get("headers") or ()).get(b"host", b"").decode("latin-1")
            if host_name(host) not in self.hosts:
                refuse = JSONResponse({"error": "this status page answers to loopback host names only"}, 400)
        if refuse is not None:
            await refuse(scope, receive, send)
            return

        async def with_headers(msg: Any) -> None:
            if msg["type"] == "http.response.start":
                h = list(msg.get("headers") or [])
                h += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),  # "no-referrer" makes Chrome send Origin: null
                    (b"x-frame-options", b"DENY"),
                ]
                msg = dict(msg, headers=h)
            await send(msg)

        await self.app(scope, receive, with_headers)


def make_app(
    model: StatusModel, guard: Guard, client: Any, prefixes: dict[str, Any], *, host: str, info: str
) -> Starlette:
    """The ASGI app of the status page of ``model``; ``guard`` decides who
    may act (`ACTIONS`, through ``client``); ``host``: the address it is
    bound to; ``info``: the footer's text."""
    env = Environment(loader=PackageLoader("distkv_ext.web", "templates"), autoescape=select_autoescape(default=True))
    env.filters["hms"] = _hms
    env.globals["rel"] = _rel
    cache: dict[Any, tuple[int, str]] = {}  # rendered parts: key -> (version, html)
    rows_cache: dict[Any, tuple[int | None, list[dict[str, Any]]]] = {}  # job -> (version, rows)

    def rows_of(ref: Any) -> list[dict[str, Any]]:
        """A job's rows as of its last change (computed once per change)."""
        version = model.job_versions.get(ref)
        hit = rows_cache.get(ref)
        if hit is None or hit[0] != version:
            hit = rows_cache[ref] = (version, job_rows(model, ref))
        return hit[1]

    def render(name: str, **kw: Any) -> str:
        return env.get_template(name).render(**kw)

    def session_of(request: Request) -> str | None:
        sid = request.cookies.get(COOKIE)
        return sid if guard.session(sid) else None

    def base_ctx(request: Request) -> dict[str, Any]:
        sid = session_of(request)
        return {
            "actions": guard.actions,
            "logged_in": sid is not None,
            "csrf": guard.csrf(sid) if sid else "",
            "groups": sorted(model.groups),
            "info": info,
            "now": time.time(),
            "version": model.version,
            "error_actions": [a for a in ACTIONS.values() if a.kind == "error"],
            "job_actions": [a for a in ACTIONS.values() if a.kind == "job"],
        }

    def part(name: str, ctx: dict[str, Any], data: Callable[[], dict[str, Any]], key: Any, version: int | None) -> str:
        """A part of the page, rendered once per version (``data()`` is
        called only then); parts with forms (they carry the session's
        CSRF value) are rendered for each logged-in browser."""
        personal = ctx["logged_in"] and name == "part_errors.html"
        if version is not None and not personal:
            hit = cache.get(key)
            if hit is not None and hit[0] == version:
                return hit[1]
        html = render(name, **ctx, **data())
        if version is not None and not personal:
            cache[key] = (version, html)
        return html

    views = {"members": members, "errors": errors, "procs": procedures}

    def _view(name: str) -> dict[str, Any]:
        return {name: views[name](model)}

    def sections(ctx: dict[str, Any], names: list[str]) -> dict[str, str]:
        res = {
            "summary": part(
                "part_summary.html", ctx, lambda: {"summary": summary(model, rows_of)}, "summary", model.version
            )
        }
        for n in names:
            res[n] = part(f"part_{n}.html", ctx, functools.partial(_view, n), n, model.section_versions[n])
        return res

    def job_part(ctx: dict[str, Any], ref: Any) -> str:
        if ref not in model.jobs or not model.shows(ref):
            rows_cache.pop(ref, None)  # gone: forget it
            cache.pop(("job", ref), None)
            return ""
        return part(
            "part_job.html",
            ctx,
            lambda: {"rows": rows_of(ref), "sort": sort_key(ref)},
            ("job", ref),
            model.job_versions.get(ref),
        )

    async def index(request: Request) -> Response:
        ctx = base_ctx(request)
        jobs = [{"rows": job_rows(model, r), "sort": sort_key(r)} for r in job_list(model)]
        ctx.update(
            jobs=jobs,
            summary=summary(model),
            members=members(model),
            errors=errors(model),
            procs=procedures(model),
            events=f"/events?v={model.version}",
        )
        return HTMLResponse(render("index.html", **ctx))

    async def job_page(request: Request) -> Response:
        ref = ref_from_query(request.query_params)
        detail = None if ref is None else job_detail(model, ref)
        ctx = base_ctx(request)
        if detail is None:
            return HTMLResponse(render("notfound.html", **ctx), status_code=404)
        ctx.update(job=detail, events=f"/events?v={model.version}&{detail['query']}")
        return HTMLResponse(render("job.html", **ctx))

    def job_sections(ctx: dict[str, Any], ref: Any) -> dict[str, str]:
        detail = job_detail(model, ref)
        if detail is None:
            return {"job-rows": "", "job-output": "", "job-runs": ""}
        c = {**ctx, "job": detail}
        return {n: render(f"part_{n.replace('-', '_')}.html", **c) for n in ("job-rows", "job-output", "job-runs")}

    async def events(request: Request) -> Response:
        try:
            since = int(request.headers.get("last-event-id") or request.query_params.get("v") or model.version)
        except ValueError:
            since = model.version
        job_ref = ref_from_query(request.query_params) if "k" in request.query_params else None
        ctx0 = base_ctx(request)

        async def stream() -> Any:
            nonlocal since
            yield "retry: 2000\n\n"
            while True:
                with anyio.move_on_after(PING):
                    await model.wait_change(since)
                if model.version <= since:
                    yield ": ping\n\n"
                    continue
                await anyio.sleep(COALESCE)
                version = model.version
                changes = model.changes_since(since)
                if changes is None:
                    yield f"id: {version}\nevent: reload\ndata: {{}}\n\n"
                    return
                refs, names = changes
                ctx = dict(ctx0, now=time.time(), version=version)
                since = version
                if job_ref is not None:
                    if job_ref in refs:
                        data = json.dumps(job_sections(ctx, job_ref))
                        yield f"id: {version}\nevent: section\ndata: {data}\n\n"
                    continue
                if refs:
                    jobs = [{"key": k["key"], "sort": s, "html": h} for k, s, h in _jobs_payload(ctx, refs)]
                    yield f"id: {version}\nevent: jobs\ndata: {json.dumps({'jobs': jobs})}\n\n"
                yield f"id: {version}\nevent: section\ndata: {json.dumps(sections(ctx, names))}\n\n"

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    def _jobs_payload(ctx: dict[str, Any], refs: list[Any]) -> list[tuple[dict[str, str], str, str]]:
        return [({"key": job_key(r)}, sort_key(r), job_part(ctx, r)) for r in sorted(refs, key=sort_key)]

    async def api_jobs(request: Request) -> Response:
        return JSONResponse([plain(row) for ref in job_list(model) for row in job_rows(model, ref)])

    async def api_members(request: Request) -> Response:
        return JSONResponse(plain(members(model)))

    async def api_errors(request: Request) -> Response:
        return JSONResponse(plain(errors(model)))

    async def metrics(request: Request) -> Response:
        return Response(metrics_text(model), media_type=CONTENT_TYPE)

    async def form_of(request: Request) -> dict[str, str]:
        body = (await request.body())[:65536].decode("utf-8", "replace")
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("application/json"):
            try:
                d = json.loads(body)
            except ValueError:
                d = None
            return {str(k): str(v) for k, v in d.items()} if isinstance(d, dict) else {}
        return {k: v[0] for k, v in parse_qs(body).items()}

    def wants_html(request: Request) -> bool:
        return "authorization" not in request.headers and "text/html" in request.headers.get("accept", "")

    def back(form: dict[str, str]) -> str:
        nxt = form.get("next", "/")
        return nxt if nxt.startswith("/") and not nxt.startswith("//") and "\\" not in nxt else "/"

    async def login(request: Request) -> Response:
        form = await form_of(request)
        if not guard.actions:
            return JSONResponse({"error": "read-only: this status page runs without --allow-actions"}, 403)
        sid = guard.login(form.get("token", ""))
        if sid is None:
            await anyio.sleep(1)  # slow down guessing
            return HTMLResponse(render("message.html", **base_ctx(request), message="Wrong token."), 403)
        resp = RedirectResponse(back(form), status_code=303)
        resp.set_cookie(COOKIE, sid, httponly=True, samesite="strict", path="/")
        return resp

    async def logout(request: Request) -> Response:
        guard.logout(request.cookies.get(COOKIE))
        resp = RedirectResponse("/", status_code=303)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    async def act(request: Request) -> Response:
        kind, name = request.path_params["kind"], request.path_params["name"]
        form = await form_of(request)
        auth = request.headers.get("authorization", "")
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        ok, why = guard.authorize(
            bearer=bearer,
            sid=request.cookies.get(COOKIE),
            csrf=form.get("csrf"),
            origin=request.headers.get("origin"),
            host=request.headers.get("host"),
        )
        if not ok:
            status = 403 if guard.actions and (bearer is not None or request.cookies.get(COOKIE)) else 401
            return _answer(request, {"error": why}, 403 if not guard.actions else status, form)
        action = ACTIONS.get(name)
        if action is None or action.kind + "s" != kind:
            return _answer(request, {"error": f"no action {kind}/{name}"}, 404, form)
        if action.kind == "error":
            target: Any = form.get("error", "")
        else:
            target = ref_from_query(form)
            if target is None:
                return _answer(request, {"error": "which job? give k, g, p (and n)"}, 400, form)
        try:
            msg = await action.run(client, target, prefixes)
        except CodeError as exc:
            status = {3: 404, 4: 400}.get(int(exc.exit_status), 409 if "changed" in str(exc) else 500)
            return _answer(request, {"error": str(exc)}, status, form)
        logger.info("status page action: %s", msg)
        return _answer(request, {"ok": msg}, 200, form)

    def _answer(request: Request, data: dict[str, str], status: int, form: dict[str, str]) -> Response:
        if wants_html(request):
            if status == 200:
                return RedirectResponse(back(form), status_code=303)
            return HTMLResponse(
                render("message.html", **base_ctx(request), message=data.get("error", "")), status_code=status
            )
        return JSONResponse(data, status_code=status)

    async def not_allowed(request: Request) -> Response:
        return JSONResponse({"error": "actions are POST only"}, status_code=405, headers={"Allow": "POST"})

    static = StaticFiles(directory=str(files("distkv_ext.web") / "static"))
    routes = [
        Route("/", index),
        Route("/job", job_page),
        Route("/events", events),
        Route("/api/jobs", api_jobs),
        Route("/api/members", api_members),
        Route("/api/errors", api_errors),
        Route("/metrics", metrics),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/api/{kind:str}/{name:str}", act, methods=["POST"]),
        Route("/api/{kind:str}/{name:str}", not_allowed, methods=["GET", "PUT", "DELETE", "PATCH"]),
        Mount("/static", app=static, name="static"),
    ]
    hosts = frozenset(LOOPBACK) | {host} if host_name(host) in LOOPBACK or host in LOOPBACK else None
    # gzip: a page of 1000 jobs is ~850 KB of HTML, ~60 KB compressed (event streams are left alone)
    middleware = [Middleware(_Guarded, hosts=hosts), Middleware(GZipMiddleware, minimum_size=1000)]
    return Starlette(routes=routes, middleware=middleware)
