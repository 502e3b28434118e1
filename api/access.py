"""Access control on the Flask server under Dash: who is calling, login and logout, kiosk
tokens, the Origin check on state-changing requests, and the security headers."""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlparse

from flask import Flask, Response, g, jsonify, make_response, redirect, render_template_string, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import Map, RequestRedirect, Rule

from api.context import LANG_COOKIE, clock, request_lang, safe_next, stores
from api.metrics import METRICS_PATH
from auth import service
from auth.callbacks import allowed, request_shape_error
from auth.lockout import AccountSlowed, LoginGuard, LoginRefused
from auth.models import ApiToken
from auth.policy import can, landing_page
from auth.principal import ANONYMOUS, Principal, current_principal
from core.i18n import t
from store.ratelimit import RateLimited, hit

log = logging.getLogger(__name__)

SESSION_COOKIE = "st_session"
KIOSK_COOKIE = "st_kiosk"
# folders only (each ends with "/"): a prefix without one would also open "/loginX", "/residents"…
PUBLIC_PREFIXES = ("/lang/", "/assets/", "/_dash-component-suites/", "/geo/")
# exact paths, and for the residents' and visitors' pages the exact methods too
PUBLIC_PATHS = frozenset({"/login", "/logout", "/_favicon.ico", "/healthz", "/api/v1/openapi.json", "/api/v1/docs"})
PUBLIC_ROUTES = frozenset(
    {
        ("GET", "/resident"),
        ("POST", "/resident/report"),
        ("GET", "/resident/calls"),
        ("POST", "/resident/invite"),
        ("GET", "/visit"),
        ("POST", "/visit"),
        ("GET", "/visit/status"),
    }
)
KIOSK_PATHS = frozenset({"/wall", "/city"})  # the pages a wall display's token may open
API_PREFIX = "/api/"
DASH_PREFIXES = ("/_dash-", "/_reload-hash")
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def client_ip() -> str:
    """The client's address: the direct peer, unless the peer is a trusted proxy
    (``SANDTABLE_TRUSTED_PROXIES``); then the nearest address in X-Forwarded-For that is not one
    of ours (a client can prepend anything to that header, but not what our proxies append)."""
    peer = request.remote_addr or ""
    networks = stores().settings.proxy_networks
    if not networks or not _in(peer, networks):
        return peer
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",")]
    for hop in reversed([h for h in hops if h]):
        if not _in(hop, networks):
            return hop if _is_address(hop) else peer
    return peer


class TrustedProxyFix:
    """The scheme, host and port a trusted reverse proxy saw (X-Forwarded-Proto, -Host, -Port), taken
    only from a request whose peer is one of ``SANDTABLE_TRUSTED_PROXIES``; from anyone else those
    headers are ignored. Behind nginx terminating TLS this makes ``request.is_secure`` true (Secure
    cookies) and the Origin check compare against the address the browser used. The client's
    address is ``client_ip``'s, from X-Forwarded-For, under the same rule."""

    def __init__(self, wsgi_app: Any, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> None:
        self.plain = wsgi_app
        self.fixed = ProxyFix(wsgi_app, x_for=0, x_proto=1, x_host=1, x_port=1, x_prefix=0)
        self.networks = networks

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        """Serve the request, with the forwarded scheme, host and port when its peer is a trusted proxy."""
        peer = str(environ.get("REMOTE_ADDR") or "")
        if self.networks and _in(peer, self.networks):
            return self.fixed(environ, start_response)
        return self.plain(environ, start_response)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _in(address: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)


FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def metrics_refusal() -> str | None:
    """Why this request may not read ``GET /metrics``, or None when it may: the bearer token of
    ``SANDTABLE_METRICS_TOKEN`` opens it from anywhere (a wrong one is refused, even from an allowed
    network: a scraper with a stale token should hear it); otherwise the client's address must be
    on ``SANDTABLE_METRICS_ALLOW``. A request forwarded by a proxy that ``SANDTABLE_TRUSTED_PROXIES``
    does not name has no client address we can believe (a proxy on loopback would make every client
    look local): only the token opens it then."""
    cfg = stores().settings
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        expected = cfg.metrics_token
        if expected and scheme.lower() == "bearer" and hmac.compare_digest(value.encode(), expected.encode()):
            return None
        return "wrong metrics token" if expected else "no metrics token is configured (SANDTABLE_METRICS_TOKEN)"
    peer = request.remote_addr or ""
    if any(h in request.headers for h in FORWARDING_HEADERS) and not _in(peer, cfg.proxy_networks):
        return "forwarded by a proxy not in SANDTABLE_TRUSTED_PROXIES: only the metrics token opens it"
    address = client_ip()
    if _in(address, cfg.metrics_networks):
        return None
    return f"{address} is not in SANDTABLE_METRICS_ALLOW"


def auditor() -> service.Auditor:
    """The audit log writer of this app."""
    return service.Auditor(stores().sessions)


def audit(
    action: str,
    *,
    target: str = "",
    reason: str = "",
    outcome: str = "ok",
    principal: Principal | None = None,
    community: str | None = None,
) -> None:
    """Append an audit entry for the current request."""
    auditor().record(
        principal or current_principal(),
        action,
        target=target,
        reason=reason,
        outcome=outcome,
        ip=client_ip(),
        community=community,
    )


def require(permission: str) -> Callable[[Callable[..., ResponseReturnValue]], Callable[..., ResponseReturnValue]]:
    """Decorate a route: a principal without the permission gets an audited 403."""

    def wrap(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
        @functools.wraps(view)
        def guarded(*args: object, **kwargs: object) -> ResponseReturnValue:
            if not can(current_principal(), permission):
                return deny(f"role lacks {permission}")
            return view(*args, **kwargs)

        return guarded

    return wrap


def audit_denial(target: str, reason: str) -> None:
    """Audit a refused request: an anonymous one counted per address and window (a flood of them
    must not fill the append-only log), any other in a row of its own."""
    if current_principal().authenticated:
        audit("denied", target=target, reason=reason, outcome="denied")
    else:
        service.audit_anonymous_denial(stores(), target=target, reason=reason, ip=client_ip())


def deny(reason: str, *, target: str = "", status: int = 403) -> Response:
    """Audit a denied access and answer it (JSON for API and Dash requests)."""
    audit_denial(target or request.path, reason)
    response = jsonify(
        {"error": t("error.forbidden" if status == 403 else "login.required", request_lang()), "reason": reason}
    )
    response.status_code = status
    return response


def _resolve_principal() -> Principal:
    s = stores()
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value:
            g.auth_error = "the Authorization header is not 'Bearer TOKEN'"
            return ANONYMOUS
        with s.sessions.begin() as session:
            token = service.resolve_token(session, value)
            if token is None:
                g.auth_error = "the token is invalid, expired or revoked"
                return ANONYMOUS
            return service.principal_of_token(token)
    # a signed-in session always outranks a display's kiosk cookie in the same browser
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        with s.sessions.begin() as session:
            user = service.resolve_session(session, cookie)
            if user is not None:
                return service.principal_of_user(user)
        g.clear_session = True
    kiosk = request.cookies.get(KIOSK_COOKIE)
    if kiosk:
        with s.sessions.begin() as session:
            token = service.resolve_token(session, kiosk)
            if token is not None and is_display_token(token):
                return service.principal_of_token(token)
        g.clear_kiosk = True
        g.auth_error = "the display token was revoked"
    return ANONYMOUS


def is_display_token(token: ApiToken) -> bool:
    """Only a wall display's token may open a kiosk (a police token in a cookie would unmask)."""
    return token.scope == "role" and token.role == "wall"


def _origin_ok() -> bool:
    """A state-changing request made with cookies must come from our own pages (CSRF)."""
    if request.method not in UNSAFE_METHODS or request.headers.get("Authorization"):
        return True
    if not (request.cookies.get(SESSION_COOKIE) or request.cookies.get(KIOSK_COOKIE)):
        return True  # no ambient credentials to abuse; the request is anonymous
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source:
        return False
    parsed = urlparse(source)
    return f"{parsed.scheme}://{parsed.netloc}" == request.host_url.rstrip("/")


def is_public(method: str, path: str) -> bool:
    """True for the pages and files anyone may fetch without signing in."""
    method = "GET" if method == "HEAD" else method
    return path in PUBLIC_PATHS or (method, path) in PUBLIC_ROUTES or path.startswith(PUBLIC_PREFIXES)


LOGIN_PAGE = """<!doctype html>
<html lang="{{ 'zh-CN' if lang == 'zh' else 'en' }}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title><link rel="stylesheet" href="/assets/css/theme.css"></head>
<body class="st-login-body"><main class="st-login">
<h1><span class="st-logo">◈</span> {{ title }}</h1>
<form method="post" action="/login" autocomplete="on">
<input type="hidden" name="next" value="{{ next }}">
<label>{{ t_user }}<input name="username" autocomplete="username" required autofocus value="{{ username }}"></label>
<label>{{ t_pass }}<input name="password" type="password" autocomplete="current-password" required></label>
{% if message %}<p class="st-login-error" role="alert">{{ message }}</p>{% endif %}
<button type="submit">{{ t_submit }}</button>
</form>
<p class="st-login-lang"><a href="/lang/{{ other }}?next=/login">{{ t_lang }}</a></p>
</main></body></html>"""


def _login_page(message: str = "", username: str = "", status: int = 200) -> Response:
    lang = request_lang()
    html = render_template_string(
        LOGIN_PAGE,
        lang=lang,
        title=t("app.title", lang),
        t_user=t("login.username", lang),
        t_pass=t("login.password", lang),
        t_submit=t("login.submit", lang),
        message=message,
        username=username,
        next=safe_next(request.values.get("next")),
        other="en" if lang == "zh" else "zh",
        t_lang=t("lang.switch", lang),
    )
    response = make_response(html, status)
    return response


def api_routes(server: Flask) -> Map:
    """The server's routes under ``/api/`` alone (Dash's catch-all page route would otherwise take
    any unknown ``/api/`` path and answer it with its HTML shell)."""
    rules = [r for r in server.url_map.iter_rules() if r.rule.startswith(API_PREFIX)]
    return Map([Rule(r.rule, methods=r.methods, endpoint=r.endpoint) for r in rules])


def api_miss(routes: Map, method: str, path: str) -> Response | None:
    """A JSON 404 for a path under ``/api/`` that no route serves, a JSON 405 (with Allow) for a
    method a route does not take; None when a route serves it."""
    try:
        routes.bind("localhost").match(path, method=method)
    except RequestRedirect:
        return None  # Flask's own routing answers it (a missing trailing slash)
    except MethodNotAllowed as err:
        allowed_methods = sorted(err.valid_methods or [])
        response = jsonify(
            {"error": t("api.err.method", request_lang(), method=method, allowed=", ".join(allowed_methods))}
        )
        response.status_code = 405
        response.headers["Allow"] = ", ".join(allowed_methods)
        return response
    except NotFound:
        response = jsonify({"error": t("api.err.not_found", request_lang())})
        response.status_code = 404
        return response
    return None


def install(
    server: Flask, csp_hashes: Callable[[], list[str]], callback_spec: Callable[[str], dict[str, Any] | None]
) -> None:
    """Install access control on the server (``callback_spec``: a server callback's declaration by its
    output key, None for anything else)."""

    api_map: list[Map] = []  # built on the first request, once every blueprint is registered

    @server.before_request
    def authenticate_request() -> ResponseReturnValue | None:
        path = request.path
        if path == METRICS_PATH:  # for a scraper: a network or a token of its own, never a session
            refused = metrics_refusal()
            return deny(refused) if refused else None
        if path.startswith(API_PREFIX):
            if not api_map:
                api_map.append(api_routes(server))
            missing = api_miss(api_map[0], request.method, path)
            if missing is not None:
                return missing  # before the principal: anyone may learn what the public document says
        g.principal = _resolve_principal()
        if not _origin_ok():
            return deny("cross-origin request refused (Origin check)")
        dash_update = path == "/_dash-update-component" and request.method == "POST"
        output = ""
        if dash_update:
            body = request.get_json(silent=True)
            output = str(body.get("output", "")) if isinstance(body, dict) else ""
            spec = callback_spec(output)
            problem = "not a Dash callback request" if spec is None else request_shape_error(body, spec)
            if problem:
                response = jsonify({"error": problem})
                response.status_code = 400
                return response
        if is_public(request.method, path):
            return None
        if request.method == "GET" and "token" in request.args and not path.startswith((API_PREFIX, *DASH_PREFIXES)):
            return _kiosk_login()
        principal = g.principal
        if principal.authenticated:
            if dash_update and not allowed(output):
                return deny(f"role may not call {output}")
            if path in ("/", "/wall") and request.method in ("GET", "HEAD"):
                # each role's own page, never 无权访问; by the server, as a page's own redirect (a
                # dcc.Location) would be a second navigation racing the next page the user opens
                landing = landing_page(principal)
                if landing == "/city" and "community" not in request.args:
                    return redirect(landing + ("?kiosk=1" if request.args.get("kiosk") == "1" else ""))
                if landing not in ("/", "/city") and path == "/":
                    return redirect(landing)
            return None
        if path.startswith(API_PREFIX):
            reason = g.get("auth_error", "missing token or session")
            audit_denial(path, reason)
            response = jsonify({"error": reason})
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Bearer realm="sandtable"'
            return response
        if path.startswith(DASH_PREFIXES):
            return deny("not signed in", status=401)
        query = urlencode({"next": request.full_path.rstrip("?")})
        return redirect(f"/login?{query}")

    @server.route("/login", methods=["GET", "POST"])
    def login() -> ResponseReturnValue:
        lang = request_lang()
        if request.method == "GET":
            return _login_page()
        username = request.form.get("username", "")[:64]
        password = request.form.get("password", "")[:256]
        s = stores()
        try:
            hit(s.redis, s.keys.prefix, f"login:{client_ip()}", limit=s.settings.login_rate_per_minute, window_s=60)
        except RateLimited as err:
            audit("login", target=username, reason="rate limited", outcome="denied", principal=ANONYMOUS)
            response = _login_page(t("login.locked", lang), username, status=429)
            response.headers["Retry-After"] = str(err.retry_after)
            return response
        ip = client_ip()
        guard = LoginGuard(s.redis, s.keys, s.settings, clock())
        try:
            guard.check(username, ip)  # before the password: a locked address gets no answer about it
        except LoginRefused as refused:
            slowed = isinstance(refused, AccountSlowed)
            audit("login", target=username, reason=refused.reason, outcome="denied", principal=ANONYMOUS)
            message = t("login.slowed", lang, s=refused.retry_after_s) if slowed else t("login.locked", lang)
            response = _login_page(message, username, status=429 if slowed else 401)
            response.headers["Retry-After"] = str(refused.retry_after_s)
            return response
        failed = False
        with s.sessions.begin() as session:
            try:
                user = service.authenticate(session, username, password)
                raw = service.create_session(session, user, s.settings, ip)
                principal = service.principal_of_user(user)
            except service.LoginFailed:
                failed = True
        if failed:
            locked = guard.failed(username, ip)
            audit(
                "login",
                target=username,
                reason="locked" if locked else "wrong credentials",
                outcome="denied",
                principal=ANONYMOUS,
            )
            return _login_page(t("login.locked" if locked else "login.failed", lang), username, status=401)
        guard.succeeded(username, ip)
        audit("login", target=username, principal=principal)
        landing = safe_next(request.form.get("next")) or "/"
        if landing == "/":
            landing = landing_page(principal)  # a guard or the property office has no wall: their tasks page
        response = make_response(redirect(landing))
        response.set_cookie(
            SESSION_COOKIE,
            raw,
            httponly=True,
            samesite="Lax",
            secure=request.is_secure,
            max_age=int(s.settings.session_hours * 3600),
        )
        response.delete_cookie(KIOSK_COOKIE)
        return response

    @server.route("/logout", methods=["GET", "POST"])
    def logout() -> ResponseReturnValue:
        raw = request.cookies.get(SESSION_COOKIE)
        if raw:
            with stores().sessions.begin() as session:
                service.revoke_session(session, raw)
            audit("logout")
        response = redirect("/login")
        response.delete_cookie(SESSION_COOKIE)
        response.delete_cookie(KIOSK_COOKIE)
        return response

    @server.after_request
    def headers(response: Response) -> Response:
        if g.get("clear_session"):
            response.delete_cookie(SESSION_COOKIE)
        if g.get("clear_kiosk"):
            response.delete_cookie(KIOSK_COOKIE)
        tiles = ""
        tile_url = stores().settings.tile_url
        if tile_url:
            parsed = urlparse(tile_url.replace("{s}", "a"))
            tiles = (
                f" {parsed.scheme}://{parsed.netloc.split('{')[0]}*"
                if "{" in parsed.netloc
                else f" {parsed.scheme}://{parsed.netloc}"
            )
        scripts = " ".join(csp_hashes())  # Dash quotes them already
        response.headers["Content-Security-Policy"] = (
            f"default-src 'self'; script-src 'self' 'unsafe-eval' {scripts}; style-src 'self' 'unsafe-inline'; "
            f"img-src 'self' data: blob:{tiles}; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
            "base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(self)"
        if request.path.startswith((API_PREFIX, *DASH_PREFIXES)) or request.path == "/login":
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def _kiosk_login() -> ResponseReturnValue:
    """``?token=T`` on a page: a display token becomes an HttpOnly cookie and leaves the URL."""
    raw = request.args.get("token", "")
    if request.path not in KIOSK_PATHS:
        return deny("a display token opens /wall and /city only", status=403)
    with stores().sessions.begin() as session:
        token = service.resolve_token(session, raw)
        principal = service.principal_of_token(token) if token is not None and is_display_token(token) else None
    if principal is None:
        audit_denial(request.path, "invalid display token")
        return make_response(t("login.required", request_lang()), 401)
    args = {k: v for k, v in request.args.items() if k != "token"}
    target = request.path + ("?" + urlencode(args) if args else "")
    response = redirect(target)
    response.set_cookie(KIOSK_COOKIE, raw, httponly=True, samesite="Lax", secure=request.is_secure, max_age=365 * 86400)
    response.set_cookie(LANG_COOKIE, request.cookies.get(LANG_COOKIE, "zh"), max_age=365 * 86400, samesite="Lax")
    audit("kiosk", target=request.path, principal=principal)
    return response
