"""A faithful, in-process fake of the GitHub REST endpoints used to publish release assets.

The fake is an HTTP server on loopback, laid out like GitHub Enterprise Server, so real
PyGithub (or urllib, curl, ...) can talk to it over real sockets:

* REST API under ``/api/v3`` (what PyGithub gets as ``base_url``),
* uploads under ``/api/uploads``,
* browser downloads at ``/<owner>/<repo>/releases/download/<tag>/<name>``, answered with a
  302 to ``/_objects/<asset id>``, which serves the bytes (HEAD and ``Range`` supported);
  drafts' assets are at ``.../download/untagged-<hex>/<name>`` (authenticated callers only)
  until the release is published;
* ``GET .../releases/assets/<id>`` with ``Accept: application/octet-stream`` redirects to
  ``/api/_objects/<asset id>`` (same bytes): PyGithub refuses to follow a redirect to its own
  host unless the path starts with ``/api/``, so ``GitReleaseAsset.download_asset()`` works.

Every URL in responses (JSON, ``Link``, ``Location``) uses the scheme, host and port of
``api_url``; PyGithub asserts that. API responses carry ``X-RateLimit-*`` headers; browser
downloads and ``/_objects`` are not API calls and neither count nor carry them.

Usage::

    with FakeGitHub(token="secret-token", owner="acme", repo="probes") as fake:
        gh = github.Github(base_url=fake.api_url, auth=github.Auth.Token("secret-token"),
                           retry=None, seconds_between_requests=None,
                           seconds_between_writes=None)
        ...
        assert fake.count("POST", r"/assets$") == 3

Behaviour modelled on github.com (see the individual handlers): drafts are only visible to
authenticated callers and are not found by tag; draft asset download URLs use an
``untagged-<hex>`` path that stops working on publish; asset names are rewritten like GitHub
does (:func:`github_asset_name`); 1,000 assets per release; assets must be under 2 GiB; a
failed upload can leave a ``starter`` asset that blocks its name until deleted; immutable
releases; primary and secondary rate limits; faults (:class:`Fault`) injected per request.

Only the standard library is used.

The package: `fake` (FakeGitHub: lifecycle, seeding, inspection, routing), `api` and `web`
(the endpoints), `responses` (GitHub's JSON and errors), `faults` (injected failures),
`state` (what the fake holds and how it changes), `model` (its records), `names` (GitHub's
asset and tag name rules) and `server` (the HTTP plumbing).
"""

from __future__ import annotations

from .fake import FakeGitHub
from .model import MAX_ASSET_BYTES, MAX_ASSETS_PER_RELEASE, Call, Fault
from .names import github_asset_name, validate_tag_name

__all__ = [
    "MAX_ASSETS_PER_RELEASE",
    "MAX_ASSET_BYTES",
    "Call",
    "FakeGitHub",
    "Fault",
    "github_asset_name",
    "validate_tag_name",
]
