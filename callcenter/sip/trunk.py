"""Where a SIP trunk sends calls, and what to check on the trunk: ``callcenter sip-uri``.

Pure values and functions, no I/O. The facts come from OpenAI's "Realtime API with SIP"
guide: the trunk targets ``sip:<project id>@sip.api.openai.com;transport=tls``, the project
id (``proj_…``) is on the project's General settings page, and the incoming-call webhook must
exist before the first call. A project with EU data residency sends its trunk to
``sip-eu.api.openai.com`` and must then control its calls (accept, the sideband) through
``https://eu.api.openai.com/v1``: EU SIP ingress with global call control hides the call
from accept. :func:`region_of_base_url` tells which region an ``OPENAI_BASE_URL`` serves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

__all__ = [
    "REGIONS",
    "BASE_URLS",
    "SIP_HOST",
    "SIP_HOSTS",
    "SIP_TLS_PORT",
    "TRUNK_CHECKS",
    "TrunkCheck",
    "TrunkTarget",
    "base_url_of",
    "region_of_base_url",
    "trunk_target",
    "validate_project_id",
]

REGIONS: Final = ("us", "eu")

SIP_HOST: Final = "sip.api.openai.com"
SIP_HOSTS: Final[dict[str, str]] = {"us": SIP_HOST, "eu": "sip-eu.api.openai.com"}
# The API base URL (OPENAI_BASE_URL) that controls the calls of each SIP host.
BASE_URLS: Final[dict[str, str]] = {
    "us": "https://api.openai.com/v1",
    "eu": "https://eu.api.openai.com/v1",
}
_API_HOSTS: Final[dict[str, str]] = {"api.openai.com": "us", "eu.api.openai.com": "eu"}
# RFC 3261 §19.1.2: the default port of SIP over TLS.
SIP_TLS_PORT: Final = 5061

_PROJECT_ID_RE = re.compile(r"proj_[A-Za-z0-9]+")
_REGION_NOTES: Final[dict[str, tuple[str, ...]]] = {
    "us": (),
    "eu": (
        "EU data residency: set OPENAI_BASE_URL=https://eu.api.openai.com/v1 for callcenter "
        "too. Calls that enter through sip-eu.api.openai.com are accepted and supervised "
        "only through the EU API; with the global one the accept cannot find them.",
    ),
}


@dataclass(frozen=True, slots=True)
class TrunkCheck:
    """One setting to check on the trunk: a short title and what it must be."""

    title: str
    detail: str


TRUNK_CHECKS: Final[tuple[TrunkCheck, ...]] = (
    TrunkCheck(
        "Webhook first",
        "Create the project's webhook for realtime.call.incoming before the first call "
        "(`callcenter webhooks create --url https://<host>/webhooks/openai`, or the "
        "dashboard) and put its signing secret in OPENAI_WEBHOOK_SECRET; without it "
        "OpenAI has nobody to ask whether to answer.",
    ),
    TrunkCheck(
        "Signalling over TLS",
        f"Send SIP over TLS to the host in the URI, port {SIP_TLS_PORT} (the default port of SIP "
        "over TLS), as the ;transport=tls in the URI says; not UDP or TCP on 5060.",
    ),
    TrunkCheck(
        "Encrypted media (SRTP)",
        "Offer SRTP if the trunk supports it, so the audio is encrypted too. Each "
        "webhook says what the call negotiated in data.sip_media_security (rtp or srtp).",
    ),
    TrunkCheck(
        "Codecs",
        "Allow G.711 µ-law (PCMU) and/or G.711 A-law (PCMA), the telephone codecs the "
        "Realtime API speaks.",
    ),
    TrunkCheck(
        "Call transfer (SIP REFER)",
        "Let the trunk act on a REFER from OpenAI: callcenter hands calls to humans with "
        "REFER to tel: or sip: targets. Trunks that gate transfers to phone numbers "
        "separately need that enabled too for tel: targets.",
    ),
    TrunkCheck(
        "Number format",
        "Send the dialled and calling numbers in E.164 (+14155550123) so that the routes' "
        "`to` and `from` patterns match.",
    ),
)


@dataclass(frozen=True, slots=True)
class TrunkTarget:
    """The SIP URI a trunk points at, its parts, and notes for the region."""

    uri: str
    host: str
    port: int
    transport: str
    notes: tuple[str, ...]
    base_url: str  # the OPENAI_BASE_URL to pair with this SIP host


def validate_project_id(value: str) -> str:
    """The project id ``value`` without surrounding blanks; ValueError if it is not ``proj_…``."""
    project_id = value.strip()
    if _PROJECT_ID_RE.fullmatch(project_id):
        return project_id
    shown = repr(project_id if len(project_id) <= 60 else project_id[:60] + "...")
    if project_id.lower().startswith(("sip:", "sips:")):
        reason = "is a SIP URI; give the project id alone, e.g. proj_abc123"
    elif project_id.startswith("org-"):
        reason = "is an organization id; the project id starts with proj_"
    elif project_id.startswith("proj_"):
        reason = "has characters other than letters and digits after proj_"
    else:
        reason = "is not a project id: it must be proj_ followed by letters and digits"
    raise ValueError(
        f"{shown} {reason}. Find it in the OpenAI dashboard under Settings > Project > General."
    )


def trunk_target(project_id: str, region: str = "us") -> TrunkTarget:
    """Where the trunk of ``project_id`` sends calls; ValueError for a bad project id or region."""
    checked = validate_project_id(project_id)
    if region not in _REGION_NOTES:
        raise ValueError(f"unknown region {region!r}; expected one of {', '.join(REGIONS)}")
    host = SIP_HOSTS[region]
    return TrunkTarget(
        uri=f"sip:{checked}@{host};transport=tls",
        host=host,
        port=SIP_TLS_PORT,
        transport="tls",
        notes=_REGION_NOTES[region],
        base_url=BASE_URLS[region],
    )


def base_url_of(region: str) -> str:
    """The ``OPENAI_BASE_URL`` that controls calls of the SIP host of ``region``."""
    return BASE_URLS[region]


def region_of_base_url(base_url: str | None) -> str | None:
    """The region an API base URL serves (None, the SDK's default, is "us"); None when it is
    not an OpenAI host (the emulator, a gateway), whose region cannot be told."""
    if not base_url:
        return "us"
    host = (urlsplit(base_url.strip()).hostname or "").lower()
    return _API_HOSTS.get(host)
