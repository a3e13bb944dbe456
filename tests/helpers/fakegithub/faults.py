"""Injected faults (model.Fault): which request a fault takes, and the answer it gives
instead of the normal one."""

from __future__ import annotations

from http import HTTPStatus

from .model import DOCS, DOCS_RATE_LIMIT, DOCS_SECONDARY, JSON, Fault, _Request, _Response
from .responses import Responses


class Faults(Responses):
    """Faults taken by matching requests, answered like GitHub's errors."""

    def _take_fault(self, req: _Request) -> Fault | None:
        for slot in self._faults:
            method = slot.fault.method.upper()
            if method not in ("*", req.method) or not slot.pattern.search(req.path):
                continue
            slot.remaining -= 1
            if slot.remaining <= 0:
                self._faults.remove(slot)
            return slot.fault
        return None

    def _fault_response(self, req: _Request, fault: Fault) -> _Response:
        if fault.drop_connection:
            return _Response(0, drop=True)
        status = fault.status
        headers: dict[str, str] = {}
        body: JSON
        if fault.rate_limit_reset_in is not None:
            body = {
                "message": f"API rate limit exceeded for user ID {self._user_id(self.login)}.",
                "documentation_url": DOCS_RATE_LIMIT,
            }
            headers.update(
                {
                    "X-RateLimit-Limit": str(self.rate_limit),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(int(self.clock()) + fault.rate_limit_reset_in),
                    "X-RateLimit-Used": str(self.rate_limit),
                    "X-RateLimit-Resource": "core",
                }
            )
        elif fault.retry_after is not None and status in (403, 429):
            body = {
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes"
                " before you try again.",
                "documentation_url": DOCS_SECONDARY,
            }
        else:
            try:
                phrase = HTTPStatus(status).phrase
            except ValueError:
                phrase = "Error"
            body = {"message": phrase if status < 500 else f"Server Error: {phrase}",
                    "documentation_url": DOCS}
        if fault.echo_authorization and isinstance(body, dict):  # on every error path
            body["message"] = (f"{body['message']} (your request: Authorization: "
                               f"{req.headers.get('authorization', '')})")
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        response = self._json(status, fault.body if fault.body is not None else body)
        response.headers.update(headers)
        if req.path.startswith("/api/"):
            # like GitHub, even error answers carry rate-limit headers (not consumed here)
            auth = self._authenticate(req)
            key = f"user:{auth}" if isinstance(auth, str) else f"ip:{req.client_ip}"
            limit = self.rate_limit if isinstance(auth, str) else self.anonymous_rate_limit
            for name, value in self._rate_headers(self._bucket(key, limit)).items():
                response.headers.setdefault(name, value)
        return response
