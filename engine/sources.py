"""How a visitor arrived: UTM parameters first (the marketer tagged the link), else the referrer. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

SOURCES = ("paid search", "paid social", "paid", "organic search", "social", "email", "referral", "direct")
UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")

_SEARCH = ("google.", "bing.com", "duckduckgo.com", "search.yahoo.", "yandex.", "baidu.com", "ecosia.org",
           "startpage.com", "search.brave.com")
_SOCIAL = ("linkedin.com", "lnkd.in", "twitter.com", "x.com", "t.co", "facebook.com", "fb.com", "instagram.com",
           "youtube.com", "reddit.com", "xing.com", "mastodon.", "threads.net", "bsky.app")
_MAIL = ("mail.google.com", "outlook.live.com", "outlook.office.com", "mail.yahoo.", "webmail.")
_PAID_SEARCH = {"cpc", "ppc", "paidsearch", "paid-search", "paid_search", "sem", "search-ads"}
_PAID = {"cpm", "cpv", "cpa", "display", "banner", "paid", "retargeting", "affiliate"}
_PAID_SOCIAL = {"paid-social", "paid_social", "paidsocial", "social-paid", "sponsored"}
_SOCIAL_MEDIUMS = {"social", "social-network", "social-media", "sm", "organic-social"}
_EMAIL_MEDIUMS = {"email", "e-mail", "newsletter", "e_mail"}


@dataclass(frozen=True)
class Source:
    name: str  # one of SOURCES
    why: str


def utm_of(url: str) -> dict[str, str]:
    """The UTM parameters of a landing page's address, lower-cased names, values as given."""
    return {k.lower(): v for k, v in parse_qsl(urlsplit(url).query) if k.lower() in UTM and v}


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower().removeprefix("www.")


def _one_of(host: str, domains: tuple[str, ...]) -> bool:
    return any(host == d or host.endswith(f".{d}") or (d.endswith(".") and (host.startswith(d) or f".{d}" in host))
               for d in domains)


def classify(utm: dict[str, str], referrer: str, own_host: str = "") -> Source:
    """The channel a visit came through, with the reason: what a B2B marketer's source report groups by."""
    medium = utm.get("utm_medium", "").strip().lower()
    if medium in _PAID_SEARCH:
        return Source("paid search", f"utm_medium={medium} marks a paid search ad")
    if medium in _PAID_SOCIAL:
        return Source("paid social", f"utm_medium={medium} marks a paid social post")
    if medium in _PAID:
        return Source("paid", f"utm_medium={medium} marks a paid placement")
    if medium in _EMAIL_MEDIUMS:
        return Source("email", f"utm_medium={medium} marks an email link")
    if medium in _SOCIAL_MEDIUMS:
        return Source("social", f"utm_medium={medium} marks a social post")
    host = _host(referrer)
    if medium:
        return Source("referral", f"utm_medium={medium} is not a medium Nurture knows; counted as a referral")
    if not host or (own_host and _host(f"//{own_host}") == host):
        return Source("direct", "no referrer and no UTM parameters" if not host else "came from the site itself")
    if _one_of(host, _MAIL):  # before search: mail.google.com is not a search
        return Source("email", f"referred by the webmail {host}")
    if _one_of(host, _SEARCH):
        return Source("organic search", f"referred by the search engine {host}")
    if _one_of(host, _SOCIAL):
        return Source("social", f"referred by the social network {host}")
    return Source("referral", f"referred by {host}")
