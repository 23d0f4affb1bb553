"""The live page's HTTP server (aiohttp, in the process that holds the analytics): the page and
its files, the pipeline as server-sent events, each panel's rows as JSON, CSV or Parquet, the
read-only SQL box, and dead letters with their raw records."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from aiohttp import web

from evlog.projector import QueryError, QueryResult

from ..analytics import PUBLIC_NAMES_SQL
from ..rendering import json_rows
from ..runtime import UserError
from .guard import CSP, Guard, new_token
from .panels import BY_ID, PANELS
from .pipeline import PipelineHub
from .sandbox import Busy, SqlBox
from .sources import Source

SQL_BOX_ROWS = 1_000
PANEL_ROWS = 5_000
# Panels are answered from a cache shared by every open page and recomputed one at a time; after
# a recomputation that took c seconds the next one waits (PANEL_DUTY - 1) * c: however many pages
# are open, panel queries take at most 1/PANEL_DUTY of the time from the live path. A panel
# younger than PANEL_MIN_AGE_S is never recomputed.
PANEL_MIN_AGE_S = 2.0
PANEL_DUTY = 20.0
STATIC_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
TEMPORAL = re.compile(r"^(DATE|TIMESTAMP.*|TIME.*)$")
NUMERIC = re.compile(r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|U.*INT|FLOAT|DOUBLE|DECIMAL.*)$")


@dataclass(slots=True)
class UiServer:
    url: str
    host: str
    port: int
    token: str


def _static() -> dict[str, bytes]:
    root = resources.files("evlog.ui") / "static"
    out: dict[str, bytes] = {}

    def walk(node: Any, prefix: str) -> None:
        for child in node.iterdir():
            if child.is_dir():
                walk(child, f"{prefix}{child.name}/")
            else:
                out[f"{prefix}{child.name}"] = child.read_bytes()

    walk(root, "")
    return out


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(data, default=str),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def result_json(result: QueryResult) -> dict[str, Any]:
    """Columns, DuckDB types and rows (JSON values as `evlog query --json` prints them)."""
    return {
        "columns": result.columns,
        "types": result.types,
        "rows": json_rows(result),
        "truncated": result.truncated,
    }


def chart_of(result: QueryResult) -> dict[str, Any] | None:
    """A line chart when the shape allows: a time first column and numbers after it."""
    types = result.types
    if len(types) < 2 or not TEMPORAL.match(types[0]):
        return None
    ys = [c for c, t in zip(result.columns[1:], types[1:], strict=True) if NUMERIC.match(t)]
    return {"kind": "line", "x": result.columns[0], "y": ys} if ys else None


class Handlers:
    def __init__(self, source: Source, hub: PipelineHub, info: dict[str, Any]) -> None:
        self.source = source
        self.hub = hub
        self.info = info
        self.files = _static()
        self._public: tuple[float, set[str]] = (0.0, set())
        self.sql_box = SqlBox()
        self._panels: dict[str, tuple[float, bytes]] = {}  # id: (computed at, JSON body)
        self._panel_turn = asyncio.Lock()
        self._panels_rest_until = 0.0  # loop time before which cached panels are served as they are

    async def index(self, request: web.Request) -> web.Response:
        return web.Response(body=self.files["index.html"], content_type="text/html")

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = self.files.get(name)
        if body is None:
            raise web.HTTPNotFound()
        suffix = name[name.rfind(".") :]
        return web.Response(body=body, content_type=STATIC_TYPES.get(suffix, "text/plain"))

    async def api_info(self, request: web.Request) -> web.Response:
        panels = [
            {"id": p.id, "title": p.title, "group": p.group, "sql": p.sql, "chart": p.chart,
             "series": p.series, "note": p.note}
            for p in PANELS
        ]  # fmt: skip
        return json_response({**self.info, "panels": panels})

    async def api_pipeline(self, request: web.Request) -> web.Response:
        return json_response(self.hub.snapshot())

    async def api_pipeline_stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": CSP,
            }
        )
        await response.prepare(request)
        q = self.hub.listen()
        try:
            await response.write(_event("hello", self.hub.snapshot()))
            while True:
                try:
                    point = await asyncio.wait_for(q.get(), 15)
                    await response.write(_event("point", point))
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
        except ConnectionResetError:
            pass  # the page went away
        finally:
            self.hub.unlisten(q)
        return response

    async def api_panel(self, request: web.Request) -> web.StreamResponse:
        panel_id, fmt = request.match_info["panel"], request.match_info.get("fmt") or "json"
        panel = BY_ID.get(panel_id)
        if panel is None:
            raise web.HTTPNotFound(text=f"no panel {panel_id!r}\n")
        if fmt == "json":
            body = await self._panel_json(panel.id)
            return web.Response(body=body, content_type="application/json")
        try:
            result = await self.source.query(panel.sql)
        except QueryError as exc:
            return json_response({"error": str(exc)}, status=409)
        return await _download(result.table, panel.id, fmt)

    async def _panel_json(self, panel_id: str) -> bytes:
        loop = asyncio.get_running_loop()

        def fresh() -> bytes | None:
            at, body = self._panels.get(panel_id, (0.0, b""))
            now = loop.time()
            young = now - at < PANEL_MIN_AGE_S or now < self._panels_rest_until
            return body if body and young else None

        if (body := fresh()) is not None:
            return body
        async with self._panel_turn:
            if (body := fresh()) is not None:  # another page's request just computed it
                return body
            started = loop.time()
            try:
                result = await self.source.query(
                    BY_ID[panel_id].sql, max_rows=PANEL_ROWS, background=True
                )
                reply = {**result_json(result), "as_of": time.time()}
            except QueryError as exc:
                reply = {"error": str(exc)}
            body = orjson.dumps(reply, default=str)
            now = loop.time()
            self._panels[panel_id] = (now, body)
            self._panels_rest_until = now + (now - started) * (PANEL_DUTY - 1)
            return body

    async def api_sql(self, request: web.Request) -> web.Response:
        try:
            body = await request.json(loads=orjson.loads)
            sql = str(body["sql"])
        except (ValueError, KeyError, TypeError):
            return json_response({"error": 'send {"sql": "SELECT ..."}'}, status=400)

        async def fetch(name: str) -> pa.Table:
            # On the background query thread: a page's copies never hold the cursors that
            # other users' queries and the panels of every page are answered on.
            return (await self.source.query(f'SELECT * FROM "{name}"', background=True)).table

        try:
            public = await self._public_names()
            result = await self.sql_box.run(sql, public, fetch, SQL_BOX_ROWS)
        except Busy as exc:
            return json_response({"error": str(exc)}, status=503, headers={"Retry-After": "1"})
        except QueryError as exc:
            return json_response({"error": str(exc)})
        return json_response({**result_json(result), "chart": chart_of(result)})

    async def _public_names(self) -> set[str]:
        loop = asyncio.get_running_loop()
        at, names = self._public
        if loop.time() - at > 5 or not names:
            rows = (await self.source.query(PUBLIC_NAMES_SQL)).rows
            names = {str(r[0]) for r in rows}
            self._public = (loop.time(), names)
        return names

    async def api_dead_letters(self, request: web.Request) -> web.Response:
        letters = await self.source.log.dead_letters(limit=50)
        for d in letters:
            d.pop("raw", None)
        return json_response({"dead_letters": letters[::-1]})

    async def api_dead_letter_raw(self, request: web.Request) -> web.Response:
        try:
            letter = await self.source.log.dead_letter(int(request.match_info["id"]))
        except ValueError:
            letter = None
        if letter is None:
            raise web.HTTPNotFound(text="no such dead letter\n")
        return web.Response(
            body=letter["raw"] or b"",
            content_type="text/plain",
            charset="utf-8",
            headers={"Content-Disposition": "inline"},
        )


def _event(name: str, data: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data, default=str) + b"\n\n"


async def _download(table: pa.Table, name: str, fmt: str) -> web.Response:
    def encode() -> bytes:
        sink = io.BytesIO()
        if fmt == "csv":
            pa_csv.write_csv(table, sink)
        else:
            pq.write_table(table, sink)
        return sink.getvalue()

    if fmt not in ("csv", "parquet"):
        raise web.HTTPNotFound(text="formats: json, csv, parquet\n")
    body = await asyncio.to_thread(encode)
    kind = "text/csv" if fmt == "csv" else "application/vnd.apache.parquet"
    return web.Response(
        body=body,
        content_type=kind,
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'},
    )


def make_app(
    source: Source, hub: PipelineHub, guard: Guard, info: dict[str, Any]
) -> web.Application:
    h = Handlers(source, hub, info)
    app = web.Application(middlewares=[guard.middleware], client_max_size=1 << 20)

    async def close_sql_box(_app: web.Application) -> None:
        h.sql_box.close()

    app.on_cleanup.append(close_sql_box)
    app.router.add_get("/", h.index)
    app.router.add_get("/static/{name:.+}", h.static)
    app.router.add_get("/api/info", h.api_info)
    app.router.add_get("/api/pipeline", h.api_pipeline)
    app.router.add_get("/api/pipeline/stream", h.api_pipeline_stream)
    app.router.add_get(r"/api/panels/{panel:[a-z_]+}", h.api_panel)
    app.router.add_get(r"/api/panels/{panel:[a-z_]+}.{fmt:csv|parquet}", h.api_panel)
    app.router.add_post("/api/sql", h.api_sql)
    app.router.add_get("/api/deadletters", h.api_dead_letters)
    app.router.add_get(r"/api/deadletters/{id:\d+}/raw", h.api_dead_letter_raw)
    return app


@contextlib.asynccontextmanager
async def serve_ui(
    source: Source,
    port: int,
    host: str = "127.0.0.1",
    *,
    info: dict[str, Any] | None = None,
    budget_ms: float = 50.0,
    token: str | None = None,
) -> AsyncIterator[UiServer]:
    """The page on host:port (0: any free port) while the context is open; yields its URL with
    the token. A follower's source feeds the latency window from its live batches."""
    token = token or new_token()
    hub = PipelineHub(source, budget_ms)
    projector = getattr(source, "projector", None)
    guard = Guard(token, host)
    app = make_app(source, hub, guard, {"budget_ms": budget_ms, **(info or {})})
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise UserError(
            f"the live page cannot listen on {host}:{port}: {exc.strerror or exc}"
            " (choose another port, or 0 for any free one)"
        ) from None
    if hub.window is not None and projector is not None:
        projector.subscribe(hub.window.observe)
    bound = runner.addresses[0]
    bound_host, bound_port = str(bound[0]), int(bound[1])
    guard.bound(bound_port)
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    ticker = asyncio.create_task(hub.run())
    try:
        yield UiServer(f"http://{shown}:{bound_port}/?token={token}", bound_host, bound_port, token)
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        if hub.window is not None and projector is not None:
            projector.unsubscribe(hub.window.observe)
        await runner.cleanup()
