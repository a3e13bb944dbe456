"""The GitHub REST client the Releases store uses: settings, token, one retrying call.

Retries live in one place, `GitHubApi.call`: PyGithub runs with `retry=None`
so that every wait is ours, honours `Retry-After` and `X-RateLimit-Reset`,
and stops at the run's deadline. Non-idempotent calls (upload, create) pass a
`reconcile` function that looks at the store before retrying, so a request
whose answer was lost is never repeated blindly. Nothing here knows the
releases' layout: that is the store's (github.py).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests
from github import Auth, Github, GithubException
from github.GithubObject import GithubObject
from github.Repository import Repository

from builder import __version__
from builder.core import limits, secrets
from builder.core.errors import InputError, StoreError
from builder.core.files import read_text
from builder.core.records import check_url
from builder.core.schema import one_line
from builder.publish.stores import Budget

log = logging.getLogger(__name__)  # the command line shows it (ui.show_library_messages)

DEFAULT_API_URL = "https://api.github.com"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class GitHubSettings:
    api_url: str
    repository: str
    token: str = field(repr=False)
    write_interval: float = 1.0     # seconds between writes; GitHub asks for >= 1 s
    retry_delay: float = 2.0        # first backoff; doubles up to max_delay
    max_delay: float = 120.0
    attempts: int = 6               # tries per call on 5xx and dropped connections
    rate_waits: int = 10            # rate-limit waits per call
    max_rate_wait: float = 3600.0   # longest wait for a primary rate-limit reset
    timeout: int = 60


def github_settings(env: Mapping[str, str], *, api_url: str | None, repository: str | None,
                    config_repository: str = "", token_file: Path | None = None,
                    write_interval: float = 1.0, retry_delay: float = 2.0) -> GitHubSettings:
    """Settings from flags, then probes.yaml, then the Actions environment."""
    repo = repository or config_repository or env.get("GITHUB_REPOSITORY", "")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repo or ""):
        raise InputError(f"GitHub repository {repo!r} is not owner/name" if repo else
                         "no GitHub repository given",
                         hint="pass --repository OWNER/NAME, set store.repository in "
                              "probes.yaml, or set GITHUB_REPOSITORY")
    api = (api_url or env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
    if not re.fullmatch(r"https?://\S+", api, re.ASCII) or check_url(api):
        raise InputError(f"GitHub API URL {api!r} is not an http(s) URL in printable ASCII",
                         hint="GitHub Enterprise: https://HOST/api/v3")
    return GitHubSettings(api, repo, read_token(env, token_file),
                          write_interval=write_interval, retry_delay=retry_delay)


def read_token(env: Mapping[str, str], token_file: Path | None) -> str:
    """The token from --token-file or GITHUB_TOKEN; never from a flag value."""
    if token_file is not None:
        try:
            token = read_text(token_file, limits.TOKEN_FILE).strip()
        except InputError as exc:
            raise InputError(f"cannot read the token file: {exc.message}") from None
        if not token:
            raise InputError(f"{token_file}: the token file is empty")
        return _plausible(token, str(token_file))
    token = env.get("GITHUB_TOKEN", "").strip()
    if not token:
        raise InputError("no GitHub token: GITHUB_TOKEN is not set",
                         hint="set GITHUB_TOKEN (Actions: ${{ secrets.GITHUB_TOKEN }} with "
                              "contents: write) or pass --token-file FILE")
    return _plausible(token, "GITHUB_TOKEN")


def _plausible(token: str, source: str) -> str:
    """Refuse (without showing it) a token that could not go into an HTTP header; a token
    that could is registered as a secret, masked in everything the command line prints."""
    secrets.register(token)
    if not re.fullmatch(r"[\x21-\x7e]+", token):
        raise InputError(f"{source}: the token holds spaces, control or non-ASCII characters",
                         hint="a GitHub token is one word of printable ASCII")
    return token


def raw_data(obj: GithubObject) -> dict[str, Any]:
    """The JSON PyGithub received, without its lazy completion (which would cost a request)."""
    data: dict[str, Any] = GithubObject.raw_data.fget(obj)  # type: ignore[attr-defined]
    return data


def _message(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    return str(data.get("message") or "")


def _error_codes(exc: GithubException) -> list[str]:
    data = exc.data if isinstance(exc.data, dict) else {}
    errors = data.get("errors") or []
    return [str(e.get("code", "")) for e in errors if isinstance(e, dict)]


def error_text(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    parts = [_message(exc)]
    for error in data.get("errors") or []:
        if isinstance(error, dict):
            parts.append(str(error.get("message") or error.get("code") or ""))
    return "; ".join(p for p in parts if p)


def is_file_count(exc: GithubException) -> bool:
    """GitHub's refusal at 1,000 assets: {"resource": "ReleaseAsset", "code": "custom",
    "field": "file_count", "message": "file_count limited to 1000 assets"}."""
    data = exc.data if isinstance(exc.data, dict) else {}
    return any(isinstance(e, dict) and "file_count" in (e.get("field"), e.get("code"))
               for e in data.get("errors") or [])


def describe(exc: GithubException, secret: str = "") -> str:
    """Status and the server's own words, one printable line, without our token: a server
    (or a proxy) that echoes the Authorization header must not put it into CI logs."""
    text = one_line(f"HTTP {exc.status} {error_text(exc)}", 500)
    return redact_secret(text, secret)


def redact_secret(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


class GitHubApi:
    """PyGithub plus our one retry loop, pacing and deadline."""

    def __init__(self, settings: GitHubSettings, budget: Budget, *,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.budget = budget
        self.sleep = sleep
        self.clock = clock
        pacing = settings.write_interval or None
        self.gh = Github(base_url=settings.api_url, auth=Auth.Token(settings.token), retry=None,
                         per_page=100, timeout=settings.timeout,
                         user_agent=f"falco-probes/{__version__}",
                         seconds_between_requests=pacing / 4 if pacing else None,
                         seconds_between_writes=pacing)
        self._repo: Repository | None = None

    @property
    def repo(self) -> Repository:
        if self._repo is None:
            name = self.settings.repository
            self._repo = self.call(f"open repository {name}", lambda: self.gh.get_repo(name))
        return self._repo

    def call(self, what: str, fn: Callable[[], T], *,
             reconcile: Callable[[], T | None] | None = None) -> T:
        """Run `fn`, retrying transient failures; other GitHub errors propagate.

        `reconcile` (for calls that are not idempotent) runs on 422
        already_exists and before a retry when the failure may have left
        something behind (a 5xx, a lost connection; not a 403/429 rate limit,
        which GitHub answers before doing anything): it returns the result if
        the store shows the call took effect, or None to try again. At most
        `settings.rate_waits` rate-limit waits per call.
        """
        delay = self.settings.retry_delay
        failures = rate_waits = 0
        while True:
            answer: GithubException | None = None
            try:
                return fn()
            except GithubException as exc:
                answer = exc
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError) as exc:
                lost = exc.__class__.__name__
            # Decided outside the except clauses: nothing raised from here on is chained to
            # the server's answer, whose body (a server or proxy may echo the Authorization
            # header into it) a --debug traceback would otherwise print.
            if answer is None:
                failures += 1
                left_something = True
                seconds, reason = delay, f"connection failed ({lost})"
            elif answer.status == 401:
                raise StoreError(f"GitHub rejected the token ({self.describe(answer)}) while "
                                 f"trying to {what}",
                                 hint="check GITHUB_TOKEN or --token-file: it must be valid "
                                      f"for {self.settings.api_url} and have contents: "
                                      "write on the repository")
            elif answer.status == 422 and reconcile and "already_exists" in _error_codes(answer):
                found = reconcile()
                if found is not None:
                    return found
                failures += 1
                if failures >= self.settings.attempts:
                    raise answer
                continue
            else:
                wait = self._rate_wait(answer, delay)
                left_something = wait is None  # refused before it ran: nothing to look for
                if wait is not None:
                    rate_waits += 1
                    if rate_waits > self.settings.rate_waits:
                        raise StoreError(f"GitHub kept rate-limiting us while trying to {what}",
                                         hint="lower the pace (--write-interval) or the "
                                              "budget (--max-uploads) and run again")
                    seconds, reason = wait
                elif answer.status >= 500:
                    failures += 1
                    seconds, reason = delay, self.describe(answer)
                else:
                    raise answer
            if failures >= self.settings.attempts:
                raise StoreError(f"GitHub: could not {what} after {failures} attempts: {reason}",
                                 hint="GitHub or the network is failing; run again later, "
                                      "nothing confirmed is lost")
            self.budget.may_wait(seconds)
            log.info(f"GitHub: {what}: {reason}; retrying in {seconds:.3g}s")
            self.sleep(seconds)
            delay = min(delay * 2, self.settings.max_delay)
            if reconcile is not None and left_something:  # a 5xx or lost answer may have
                found = reconcile()                        # done it: look before repeating
                if found is not None:
                    return found

    def describe(self, exc: GithubException) -> str:
        return describe(exc, self.settings.token)

    def _rate_wait(self, exc: GithubException, delay: float) -> tuple[float, str] | None:
        """How long a rate-limited request must wait, or None if it is not rate-limited."""
        if exc.status not in (403, 429):
            return None
        headers = {k.lower(): str(v) for k, v in (exc.headers or {}).items()}
        retry_after = headers.get("retry-after", "")
        if retry_after.isdigit():
            return max(1.0, float(retry_after)), f"rate limited (Retry-After {retry_after}s)"
        reset = headers.get("x-ratelimit-reset", "")
        if headers.get("x-ratelimit-remaining") == "0" and reset.isdigit():
            seconds = max(1.0, float(reset) - self.clock() + 1)
            self.budget.may_wait(seconds)
            if seconds > self.settings.max_rate_wait:
                stamp = time.strftime("%H:%M UTC", time.gmtime(float(reset)))
                raise StoreError(f"GitHub API rate limit exhausted until {stamp}",
                                 hint="run again after the reset, or pass --deadline so the "
                                      "run stops cleanly instead")
            return seconds, "API rate limit exhausted; waiting for its reset"
        lowered = _message(exc).lower()
        if exc.status == 429 or "secondary rate limit" in lowered or "abuse" in lowered:
            return max(delay, 60.0), "secondary rate limit"
        return None


