"""Keep credentials out of everything autolabel stores, logs, caches or shows.

A base URL may carry credentials: user info (``http://user:SECRET@host/v1``) or a
query parameter (``?api-key=SECRET``, as some gateways want). :func:`redact_url` gives
the form that may be stored and shown, with each secret replaced by ``***``;
:func:`url_secrets` lists the secret values so that texts which may echo them (an
endpoint's error message quoting the request) can be cleaned with :func:`scrub`.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit, urlunsplit

MASK = "***"
# Query parameters whose value is a credential. Names are compared lower-cased, with
# "-" and "_" treated alike; a name containing one of the markers counts too.
SECRET_PARAMS = frozenset(
    {
        "api_key",
        "apikey",
        "key",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "auth",
        "authorization",
        "password",
        "pass",
        "pwd",
        "secret",
        "client_secret",
        "sig",
        "signature",
        "code",
        "session",
    }
)
_MARKERS = ("key", "token", "secret", "passw", "signature", "credential", "auth")
# Shorter values are not scrubbed from free text: masking every "ab" would garble it.
MIN_SECRET_LEN = 4


def is_secret_param(name: str) -> bool:
    norm = unquote(name).strip().lower().replace("-", "_")
    return norm in SECRET_PARAMS or any(m in norm for m in _MARKERS)


def redact_url(url: str | None) -> str | None:
    """``url`` with user info and secret query values replaced by ``***``."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK  # not parseable: cannot tell what is secret, so show nothing
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = "&".join(_redact_pair(p) for p in parts.query.split("&")) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _redact_pair(pair: str) -> str:
    name, eq, value = pair.partition("=")
    if eq and value and is_secret_param(name):
        return f"{name}={MASK}"
    return pair


def url_secrets(url: str | None) -> list[str]:
    """The secret values in ``url`` (user info, secret query values), raw and decoded."""
    if not url:
        return []
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    found: list[str] = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        user, _, password = userinfo.partition(":")
        found += [userinfo, user, password]
    for pair in parts.query.split("&") if parts.query else ():
        name, eq, value = pair.partition("=")
        if eq and value and is_secret_param(name):
            found.append(value)
    return _variants(found)


def _variants(values: Iterable[str]) -> list[str]:
    out: set[str] = set()
    for v in values:
        for form in (v, unquote(v), quote(unquote(v), safe="")):
            if len(form) >= MIN_SECRET_LEN:
                out.add(form)
    # Longest first: a secret that contains another is masked whole.
    return sorted(out, key=len, reverse=True)


def scrub(text: str | None, secrets: Iterable[str]) -> str | None:
    """``text`` with every occurrence of each secret replaced by ``***``."""
    if not text:
        return text
    for secret in secrets:
        if len(secret) >= MIN_SECRET_LEN and secret in text:
            text = text.replace(secret, MASK)
    return text


__all__ = [
    "MASK",
    "SECRET_PARAMS",
    "is_secret_param",
    "redact_url",
    "scrub",
    "url_secrets",
]
