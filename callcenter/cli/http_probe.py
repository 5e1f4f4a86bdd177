"""One unsigned POST to a URL, to see what answers there (used by ``callcenter doctor``)."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Final

__all__ = ["ProbeAnswer", "probe"]

_MAX_BODY: Final = 4096


@dataclass(frozen=True, slots=True)
class ProbeAnswer:
    """What a URL answered: a status, the start of the body and any redirect, or an error."""

    status: int | None
    body: bytes = b""
    location: str | None = None
    error: str | None = None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: object,
        code: int,
        msg: str,
        headers: object,
        newurl: str,
    ) -> None:
        return None


def probe(url: str, body: bytes, timeout: float) -> ProbeAnswer:
    """POST ``body`` as JSON to ``url`` without following redirects; never raises."""
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "callcenter-doctor"},
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            return ProbeAnswer(response.status, response.read(_MAX_BODY))
    except urllib.error.HTTPError as exc:
        with exc:
            return ProbeAnswer(exc.code, exc.read(_MAX_BODY), exc.headers.get("Location"))
    except urllib.error.URLError as exc:
        return ProbeAnswer(None, error=str(exc.reason))
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return ProbeAnswer(None, error=f"{type(exc).__name__}: {exc}")
