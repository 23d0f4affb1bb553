"""Who may talk to the page, as Jupyter decides it: a random token (from the URL printed at start,
then a same-site cookie), a Host header naming this machine's loopback (no DNS rebinding), no
cross-site requests, and headers that keep the page out of other sites' frames."""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none';"
    " form-action 'self'"
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def new_token() -> str:
    return secrets.token_urlsafe(24)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


class Guard:
    """Checks every request; `allowed` are the Host header values this server answers to."""

    def __init__(self, token: str, bind_host: str) -> None:
        self.token = token
        self.names = list(LOOPBACK_NAMES)
        if not is_loopback(bind_host) and bind_host not in ("0.0.0.0", "::", ""):
            self.names.append(f"[{bind_host}]" if ":" in bind_host else bind_host)
        self.cookie = ""
        self.allowed: set[str] = set()  # nothing until the port is known
        self.origins: set[str] = set()

    def bound(self, port: int) -> None:
        """The port the server got: Host headers and origins must name it."""
        self.cookie = f"evlog_ui_{port}"  # cookies ignore ports: one name per server
        self.allowed = {f"{n}:{port}" for n in self.names}
        self.origins = {f"http://{h}" for h in self.allowed}

    def refusal(self, request: web.Request) -> str | None:
        """Why `request` is refused, or None."""
        if request.headers.get("Host", "") not in self.allowed:
            return "this page answers only to its loopback address (Host header refused)"
        origin = request.headers.get("Origin")
        if origin is not None and origin not in self.origins:
            return "cross-origin request refused"
        if request.headers.get("Sec-Fetch-Site", "none") not in ("none", "same-origin"):
            return "cross-site request refused"
        if not self._token_ok(request):
            return "a token is needed: open the URL evlog printed when it started"
        return None

    def _token_ok(self, request: web.Request) -> bool:
        given = (
            request.query.get("token")
            or request.cookies.get(self.cookie)
            or request.headers.get("Authorization", "").removeprefix("token ")
        )
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        why = self.refusal(request)
        if why is not None:
            return web.Response(status=403, text=why + "\n")
        response = await handler(request)
        if request.query.get("token") and not response.prepared:
            response.set_cookie(self.cookie, self.token, httponly=True, samesite="Strict", path="/")
        if not response.prepared:
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "no-referrer")
            response.headers.setdefault("Cache-Control", "no-store")
        return response
