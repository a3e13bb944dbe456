"""No secret in any output: a server that echoes the Authorization header into its error
bodies, on every error path, with and without --debug, never gets the token printed.

The first line of defence is that errors are not chained to the server's answer; the
second, that the one place writing to the terminal masks the token (core/secrets.py,
ui.py). Both are exercised: every fault below ends the run with the server's words in
the error, and --debug prints the traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from buildreports import specs, write_report
from fakegithub import FakeGitHub, Fault
from githubstore import TOKEN, publish_cli

FAULTS = {
    "401 bad token": [Fault("GET", r"/repos/[^/]+/[^/]+$", status=401, echo_authorization=True)],
    "403 forbidden": [Fault("POST", r"/releases$", status=403, echo_authorization=True)],
    "404 no repository": [Fault("GET", r"/repos/[^/]+/[^/]+$", status=404,
                                echo_authorization=True)],
    "422 refused": [Fault("POST", r"/releases$", status=422, echo_authorization=True)],
    "429 again and again": [Fault("POST", r"/releases$", status=429, retry_after=1, times=50,
                                  echo_authorization=True)],
    "5xx until we give up": [Fault("POST", r"/releases$", status=502, times=50,
                                   echo_authorization=True)],
    "hourly quota exhausted": [Fault("POST", r"/releases$", status=403,
                                     rate_limit_reset_in=7200, echo_authorization=True)],
    "upload 500": [Fault("POST", r"/assets", status=500, times=50, echo_authorization=True)],
}


# --debug prints everything plain output does, and the traceback too: every fault with it,
# and the case that once leaked (the quota's chained traceback) without it as well.
CASES = [(name, faults, True) for name, faults in FAULTS.items()] + [
    ("hourly quota exhausted, plain", FAULTS["hourly quota exhausted"], False)]


@pytest.mark.parametrize(("faults", "debug"), [(f, d) for _, f, d in CASES],
                         ids=[name for name, _, _ in CASES])
def test_the_token_is_printed_nowhere(tmp_path: Path, faults: list[Fault], debug: bool) -> None:
    with FakeGitHub(token=TOKEN) as fake:
        write_report(tmp_path / "build", specs(1))
        for fault in faults:
            fake.inject(fault)
        env = {"GITHUB_API_URL": fake.api_url, "GITHUB_REPOSITORY": "acme/probes",
               "GITHUB_TOKEN": TOKEN}
        if debug:
            env["FALCO_PROBES_DEBUG"] = "1"
        done = publish_cli(fake, tmp_path, env, "--json")
        echoed = [c for c in fake.calls if c.status >= 400]
    assert echoed, "the fault was never answered: the test would prove nothing"
    assert done.returncode in (2, 4), done.stderr
    assert TOKEN not in done.stdout and TOKEN not in done.stderr
    assert "error:" in done.stderr
    if debug:
        assert "Traceback" in done.stderr      # the traceback was printed, masked
    text = (tmp_path / "f.jsonl").read_text() if (tmp_path / "f.jsonl").exists() else ""
    assert TOKEN not in text
    summary = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
    assert TOKEN not in json.dumps(summary)
