"""Where a SIP trunk sends calls, and what to check on the trunk: ``callcenter sip-uri``.

Pure values and functions, no I/O. The facts come from OpenAI's "Realtime API with SIP"
guide: the trunk targets ``sip:<project id>@sip.api.openai.com;transport=tls``, the project
id (``proj_…``) is on the project's General settings page, and the incoming-call webhook must
exist before the first call. That guide names no regional SIP host, so every region gets the
documented host, with a note for the regions that may have their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = [
    "REGIONS",
    "SIP_HOST",
    "SIP_TLS_PORT",
    "TRUNK_CHECKS",
    "TrunkCheck",
    "TrunkTarget",
    "trunk_target",
    "validate_project_id",
]

REGIONS: Final = ("us", "eu")

SIP_HOST: Final = "sip.api.openai.com"
# RFC 3261 §19.1.2: the default port of SIP over TLS.
SIP_TLS_PORT: Final = 5061

_PROJECT_ID_RE = re.compile(r"proj_[A-Za-z0-9]+")
_REGION_NOTES: Final[dict[str, tuple[str, ...]]] = {
    "us": (),
    "eu": (
        "OpenAI's SIP guide documents only sip.api.openai.com; it names no EU SIP host. "
        "If your project keeps its data in the EU, look up its SIP host in the OpenAI "
        "dashboard (or ask OpenAI) before pointing the trunk here.",
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
        f"Send SIP over TLS to {SIP_HOST}, port {SIP_TLS_PORT} (the default port of SIP "
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
    return TrunkTarget(
        uri=f"sip:{checked}@{SIP_HOST};transport=tls",
        host=SIP_HOST,
        port=SIP_TLS_PORT,
        transport="tls",
        notes=_REGION_NOTES[region],
    )
