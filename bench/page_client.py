"""An open live page, without a browser: in its own process, reads the pipeline's server-sent
events and asks for every panel and the dead letters every `--every` seconds, as the page's
script does. bench/e2e runs it beside a follower to measure what an open page costs the live
path; it prints what it did as one JSON line.

    python -m bench.page_client URL --seconds 60 [--every 5]
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import urllib.request
from urllib.parse import urlsplit


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url", help="the page's URL as printed, with ?token=")
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--every", type=float, default=5.0)
    args = p.parse_args()
    parts = urlsplit(args.url)
    base, token = f"{parts.scheme}://{parts.netloc}", parts.query.removeprefix("token=")
    counts = {"points": 0, "panel_requests": 0, "errors": 0, "panel_ms_max": 0.0}

    def get(path: str) -> bytes:
        sep = "&" if "?" in path else "?"
        with urllib.request.urlopen(f"{base}{path}{sep}token={token}", timeout=60) as r:
            return bytes(r.read())

    def stream() -> None:
        with urllib.request.urlopen(f"{base}/api/pipeline/stream?token={token}") as r:
            for line in r:
                if line.startswith(b"event: point"):
                    counts["points"] += 1

    threading.Thread(target=stream, daemon=True).start()
    panels = [p["id"] for p in json.loads(get("/api/info"))["panels"]]
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        for path in [*(f"/api/panels/{p}" for p in panels), "/api/deadletters"]:
            try:
                get(path)
                counts["panel_requests"] += 1
            except OSError:
                counts["errors"] += 1
        took = (time.perf_counter() - t0) * 1e3
        counts["panel_ms_max"] = round(max(counts["panel_ms_max"], took), 1)
        time.sleep(max(0.0, args.every - took / 1e3))
    print(json.dumps(counts), flush=True)
    os._exit(0)  # the stream thread is blocked in a read


if __name__ == "__main__":
    main()
