"""A local socket through which other processes query (and rebuild) while a follower holds the
DuckDB file: DuckDB allows one writing process per file, so readers ask the writer.

Protocol (docs/socket.md): one JSON object per line each way; requests {"op": "query", "sql",
"max_rows"}, {"op": "export", ...}, {"op": "snapshot", ...}, {"op": "rebuild", "names",
"from_seq"}, {"op": "status"}; replies carry "ok" and "error" or data. A query's reply line says
{"ok": true, "arrow_bytes": N, "truncated": ...} and N bytes of an Arrow IPC stream follow it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson

from evlog.projector import Projector, QueryError
from evlog.projector.export import export, snapshot

from .client import is_listening, socket_path


@contextlib.asynccontextmanager
async def serve(projector: Projector, duckdb_path: Path) -> AsyncIterator[Path]:
    path = socket_path(duckdb_path)
    if path.exists():
        if is_listening(path):
            raise RuntimeError(f"another evlog process is serving {duckdb_path} at {path}")
        path.unlink()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                reply = await _dispatch(projector, line)
                body = reply.pop("arrow", b"")
                writer.write(orjson.dumps(reply, default=str) + b"\n")
                if body:
                    writer.write(body)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_unix_server(handle, path=str(path), limit=16 << 20)
    try:
        yield path
    finally:
        server.close()
        await server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


async def _dispatch(projector: Projector, line: bytes) -> dict[str, Any]:
    try:
        req = orjson.loads(line)
        op = req.get("op")
        if op == "query":
            result = await projector.query(req["sql"], max_rows=req.get("max_rows"))
            body = await asyncio.to_thread(result.to_ipc)
            return {
                "ok": True,
                "arrow_bytes": len(body),
                "truncated": result.truncated,
                "arrow": body,
            }
        if op == "export":
            out, fmt = Path(req["out"]), req["format"]
            rows = await projector.run_read(lambda cur: export(cur, req["what"], out, fmt))
            return {"ok": True, "rows": rows}
        if op == "snapshot":
            out, chosen = Path(req["out"]), list(projector.projections)
            tables = await projector.run_read(lambda cur: snapshot(cur, chosen, out))
            return {"ok": True, "tables": tables}
        if op == "rebuild":
            replayed = await projector.rebuild(req.get("names"), from_seq=req.get("from_seq", 0))
            return {"ok": True, "replayed": replayed}
        if op == "status":
            return {"ok": True, "status": await projector.status()}
        return {"ok": False, "error": f"unknown op {op!r}"}
    except QueryError as exc:
        return {"ok": False, "error": str(exc)}
    except Exception as exc:  # the server must outlive a bad request
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
