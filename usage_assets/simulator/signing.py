"""Pre-signed download links in the style of S3's query-string authentication.

Like the real links, each one is a bearer credential: whoever holds it can fetch the file until it
expires, and any change to its path or query invalidates it. The real API mints fresh links on every
GET of a completed job, valid 36 h from that GET.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

_DATE_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class LinkSigner:
    """Signs and checks (path, issued-at, lifetime) with a server-side secret."""

    secret: bytes

    def sign(self, base_url: str, path: str, issued_at: datetime, lifetime: timedelta) -> str:
        query = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Date": issued_at.astimezone(UTC).strftime(_DATE_FORMAT),
            "X-Amz-Expires": str(int(lifetime.total_seconds())),
        }
        query["X-Amz-Signature"] = self._signature(
            path, query["X-Amz-Date"], query["X-Amz-Expires"]
        )
        return f"{base_url.rstrip('/')}{path}?{urlencode(query)}"

    def refusal(self, path: str, query: dict[str, str], now: datetime) -> str | None:
        """Why a request for `path` with this query is refused (S3's error code), or None."""
        try:
            issued = datetime.strptime(query["X-Amz-Date"], _DATE_FORMAT).replace(tzinfo=UTC)
            lifetime = timedelta(seconds=int(query["X-Amz-Expires"]))
            signature = query["X-Amz-Signature"]
        except (KeyError, ValueError):
            return "AccessDenied"
        expected = self._signature(path, query["X-Amz-Date"], query["X-Amz-Expires"])
        if not hmac.compare_digest(signature, expected):
            return "SignatureDoesNotMatch"
        if now > issued + lifetime:
            return "AccessDenied:Request has expired"
        return None

    def _signature(self, path: str, date: str, expires: str) -> str:
        message = f"{path}\n{date}\n{expires}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()
