"""Before the bridge sends an instance its key or a request, the instance proves it holds its launch key.

The instance key proves the bridge to the instance; this proves the instance to the bridge. A listener on an
instance's address that is not the launch the bridge started (another tenant that took the port during a
restart, a stale process) must never get the new key, a readiness probe, a replayed ``initialize`` or a
client's call. So each launch of a guarded service (``instance_key = true``: the built-ins and catalog
packages, instances/keyguard.py) is challenged first: the bridge sends a random challenge and no key; the
instance answers HMAC-SHA256(key, challenge). A listener that answers without the right proof is an
impostor: the start fails with an ``instance.impostor`` event, no traffic goes to it, and the instance is
healed. The process runtime also makes the case impossible by construction (own network namespace, a
socket in the instance's own directory); Docker and Swarm publish host ports, where it is not.
"""

from __future__ import annotations

import hmac
import secrets

import aiohttp

from bridge.mcp.client import ProbeFailed, instance_url

CHALLENGE_HEADER = "X-Paradise-Challenge"
PROOF_HEADER = "X-Paradise-Proof"


class Impostor(ProbeFailed):
    """Something answered on the instance's address but could not prove it holds the launch's key."""


def proof(key: str, challenge: str) -> str:
    """Must match instances/keyguard.py ``proof``."""
    return hmac.new(key.encode("utf-8"), b"paradise-proof:" + challenge.encode("ascii"), "sha256").hexdigest()


async def verify_instance(http: aiohttp.ClientSession, port: int, path: str, key: str, *, timeout: float) -> None:
    """Return once the listener on ``port`` proved it holds ``key``; ProbeFailed while nothing answers;
    Impostor when something answers without the proof."""
    challenge = secrets.token_urlsafe(24)
    headers = {"Host": f"127.0.0.1:{port}", CHALLENGE_HEADER: challenge}
    try:
        async with http.get(
            instance_url(port, path), headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            got, status = resp.headers.get(PROOF_HEADER), resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ProbeFailed(f"not reachable yet: {exc.__class__.__name__}") from None
    if not got or not hmac.compare_digest(got, proof(key, challenge)):
        stale = " (an image built before instances answered the challenge says 401: devops-paradise images build)"
        raise Impostor(f"the listener on port {port} answered {status} but could not prove it holds this launch's "
                       f"key{stale if status == 401 else ''}")  # fmt: skip
