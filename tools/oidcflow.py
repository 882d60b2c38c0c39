"""An OpenID Connect login as a browser does it, for tests and benches.

Part of the lab toolkit (tools/). A browser following a relying party's
redirect lands on the provider's login page (an HTML form), posts the
user's name and password with the form's hidden fields, and is sent back
to the relying party with a code. `portal_login` does exactly that over
HTTP with a requests session (cookies kept); `Client` plays a relying party
itself (authorization code flow with PKCE S256 and state, the token
endpoint, userinfo, refresh) to check a provider without a hub.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlparse

import requests


class _Forms(HTMLParser):
    """The page's forms: action, method and every input's name and value."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._in_error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get").lower(), "fields": {}})
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["fields"][a["name"]] = a.get("value", "")
        elif "alert" in a.get("class", "").split():
            self._in_error = True
        elif self._in_error and a.get("trmsg"):
            # LemonLDAP::NG's messages are numbers its page's script translates
            # (Portal/Main/Constants.pm: 5 is a bad user name or password).
            self.errors.append(f"portal message {a['trmsg']}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "div":
            self._in_error = False

    def handle_data(self, data: str) -> None:
        if self._in_error and data.strip():
            self.errors.append(data.strip())


class LoginRefused(AssertionError):
    """The provider's login page came back instead of a redirect: its message."""


def login_form(page: requests.Response) -> dict[str, Any]:
    parser = _Forms()
    parser.feed(page.text)
    for form in parser.forms:
        if "user" in form["fields"] and "password" in form["fields"]:
            form["action"] = urljoin(page.url, form["action"] or page.url)
            form["errors"] = parser.errors
            return form
    raise AssertionError(f"no login form (user, password) on {page.url} (HTTP {page.status_code}): {page.text[:300]!r}")


def portal_login(
    session: requests.Session, page: requests.Response, user: str, password: str, timeout: float = 30
) -> requests.Response:
    """Fill in the provider's login form on `page` and follow where it sends the browser.

    Returns the last response of the redirect chain (the relying party's page
    after its callback when the login was accepted). Raises LoginRefused
    with the page's message when the provider shows its login form again.
    """
    form = login_form(page)
    fields = {**form["fields"], "user": user, "password": password}
    r = session.post(form["action"], data=fields, timeout=timeout, allow_redirects=True)
    if urlparse(r.url).netloc == urlparse(page.url).netloc:
        try:
            again = login_form(r)
        except AssertionError:
            again = None
        if again is not None:
            raise LoginRefused(f"{r.url}: {' '.join(again['errors']) or 'login form shown again'}")
    return r


def pkce_pair() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@dataclass
class Client:
    """A confidential relying party with PKCE, as a hub is one."""

    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    verify: str | bool = True
    scope: str = "openid profile email groups"
    # The user's browser (the provider's session cookie) and the relying
    # party's own back channel (token, userinfo): never the same cookies.
    browser: requests.Session = field(default_factory=requests.Session)
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        for s in (self.browser, self.session):
            s.verify = self.verify
            # requests lets REQUESTS_CA_BUNDLE from the environment override the
            # session's own CA file (as in hubrun.Hub.session); a lab CA must win.
            s.trust_env = self.verify is True
        self.discovery = self.session.get(self.issuer.rstrip("/") + "/.well-known/openid-configuration", timeout=30).json()

    def authorize(self, state: str, challenge: str | None, redirect_uri: str | None = None) -> requests.Response:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri or self.redirect_uri,
            "scope": self.scope,
            "state": state,
        }
        if challenge:
            params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
        return self.browser.get(self.discovery["authorization_endpoint"] + "?" + urlencode(params), timeout=30)

    def login(self, user: str, password: str, challenge: str | None = None, state: str | None = None) -> dict[str, str]:
        """The browser's part: authorize, the login form, the redirect back. Returns the callback's query."""
        state = state or secrets.token_urlsafe(16)
        page = self.authorize(state, challenge)
        form = login_form(page)
        r = self.browser.post(
            form["action"], data={**form["fields"], "user": user, "password": password}, timeout=30, allow_redirects=False
        )
        # The portal may pass through itself (authorize again) before the callback.
        for _ in range(5):
            location = r.headers.get("Location", "")
            if r.status_code in (301, 302, 303) and location.startswith(self.redirect_uri):
                query = {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}
                if query.get("state") != state:
                    raise AssertionError(f"state came back as {query.get('state')!r}, sent {state!r}")
                return query
            if r.status_code in (301, 302, 303) and location:
                r = self.browser.get(urljoin(r.url, location), timeout=30, allow_redirects=False)
                continue
            break
        raise LoginRefused(
            f"{r.url} (HTTP {r.status_code}): {' '.join(login_form(r)['errors']) if 'password' in r.text else r.text[:300]!r}"
        )

    def token(self, **data: str) -> requests.Response:
        return self.session.post(
            self.discovery["token_endpoint"], data=data, auth=(self.client_id, self.client_secret), timeout=30
        )

    def code_for_tokens(self, code: str, verifier: str | None) -> requests.Response:
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri}
        if verifier:
            data["code_verifier"] = verifier
        return self.token(**data)

    def refresh(self, refresh_token: str) -> requests.Response:
        return self.token(grant_type="refresh_token", refresh_token=refresh_token)

    def userinfo(self, access_token: str) -> requests.Response:
        return self.session.get(
            self.discovery["userinfo_endpoint"], headers={"Authorization": f"Bearer {access_token}"}, timeout=30
        )

    def id_claims(self, id_token: str) -> dict[str, Any]:
        """The ID token's claims, its signature checked against the provider's keys."""
        import jwt

        keys = jwt.PyJWKClient(self.discovery["jwks_uri"])
        keys.fetch_data = lambda: self.session.get(self.discovery["jwks_uri"], timeout=30).json()  # our CA, our session
        key = keys.get_signing_key_from_jwt(id_token)
        return jwt.decode(id_token, key.key, algorithms=["RS256"], audience=self.client_id, issuer=self.discovery["issuer"])
