"""Schemathesis against a live bridge: the OpenAPI document says exactly what the admin API accepts.

The bridge is the whole app in-process (tests/inprocess/: real MCP servers, the fixture catalog), fuzzed over
loopback with the admin token. Every operation is driven from the served document, in positive and negative
modes, and each answer must be no server error, a documented status with a body of the documented schema, an
acceptance of every schema-valid request (4xx only where the state explains it: 404 for an unknown client, 409
for a duplicate), and a refusal of every schema-invalid one.

Two things a generated request cannot know are supplied for positive registrations: an existing workspace
(the schema can say "an absolute path", not "one that exists under PARADISE_WORKSPACE_ROOTS", so a drawn
path is refused with 422, which is the documented answer) and the cheap fixture ``echo`` service (the
catalog also lists serena and quality, real servers too heavy to start dozens of times in a test).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from schemathesis.engine import events, from_schema

from tests.inprocess import InProcessBridge, inprocess_bridge, serving_inprocess

pytestmark = [pytest.mark.slow, pytest.mark.inprocess]

CHECKS = {
    "not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance",
    "positive_data_acceptance", "negative_data_rejection",
}
# The engine of `schemathesis run` (examples, coverage and fuzzing phases, once each), bounded: a few examples
# per operation, short request timeouts, one event read from a stream, no stateful phase (its chains of
# registrations would start many instances on a 2-core machine). Only the checks in CHECKS run.
CONFIG = """
request-timeout = 20
max-stream-events = 1
headers = {{ Authorization = "Bearer {token}" }}
[generation]
mode = "all"
max-examples = 5
no-shrink = true
deterministic = true
[phases.stateful]
enabled = false
[checks]
enabled = false
""" + "".join(f"[checks.{name}]\nenabled = true\n" for name in sorted(CHECKS))
REGISTER = "POST /api/v1/clients"
MAX_INSTANCES = 2


@pytest.fixture(scope="module")
def fuzzed_bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessBridge]:
    # A cap of two instances: the first valid registrations start one each, later ones are refused with the
    # documented 429 (a state that explains it), so the run never starts more than two real processes.
    proc = inprocess_bridge(tmp_path_factory.mktemp("fuzz-bridge"), PARADISE_MAX_INSTANCES=str(MAX_INSTANCES))
    with serving_inprocess(proc):
        yield proc


def load_schema(bridge: InProcessBridge, workspace: Path) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_str(CONFIG.format(token=bridge.admin_token))
    schema = schemathesis.openapi.from_url(bridge.url + "/api/v1/openapi.json", config=config)

    def supplied(case: schemathesis.Case) -> schemathesis.Case:
        positive = case.meta is None or case.meta.generation.mode.is_positive  # an explicit example is valid
        if f"{case.method} {case.path}" == REGISTER and positive and isinstance(case.body, dict):
            case.body = {**case.body, "workspace": str(workspace), "services": ["echo"]}
        return case

    @schema.hook("map_case")
    def existing_workspace_and_cheap_service(context, case):
        return supplied(case)

    @schema.hook("before_add_examples")
    def the_documented_example_too(context, examples) -> None:
        examples[:] = [supplied(case) for case in examples]

    return schema


def test_the_api_accepts_what_its_document_allows_and_refuses_the_rest(
    fuzzed_bridge: InProcessBridge, workspace: Path
) -> None:
    schema = load_schema(fuzzed_bridge, workspace)
    failures: list[str] = []
    statuses: dict[str, set[int]] = {}
    ran: set[str] = set()
    finished = False
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            for interaction in recorder.interactions.values():
                if interaction.response is not None:
                    statuses.setdefault(recorder.label, set()).add(interaction.response.status_code)
            for nodes in recorder.checks.values():
                for node in nodes:
                    ran.add(node.name)
                    if node.failure_info is not None:
                        failures.append(f"{recorder.label}: {node.name}: {node.failure_info.failure.title}\n"
                                        f"{node.failure_info.code_sample}")
        elif isinstance(event, events.NonFatalError | events.FatalError):
            failures.append(f"engine error: {event}")
        elif isinstance(event, events.EngineFinished):
            finished = True
    assert finished
    # A failure after the answer has begun (a stream) never reaches the caller; the bridge's log shows it.
    assert "unexpected error" not in fuzzed_bridge.log.read_text()
    assert not failures, "\n\n".join(failures[:10])
    assert ran == CHECKS
    documented = {f"{m.upper()} {p}" for p, ops in fuzzed_bridge.api("GET", "/openapi.json").json()["paths"].items()
                  for m in ops}
    assert documented - set(statuses) <= {"GET /api/v1/openapi.json"}, statuses  # every operation was called
    assert {201, 409, 422} <= statuses[REGISTER], statuses[REGISTER]  # made, duplicate, invalid
    assert len(fuzzed_bridge.api("GET", "/clients").json()) <= MAX_INSTANCES


def test_the_served_document_lists_the_catalog_services(fuzzed_bridge: InProcessBridge) -> None:
    doc = fuzzed_bridge.api("GET", "/openapi.json").json()
    services = doc["components"]["schemas"]["ClientCreate"]["properties"]["services"]["anyOf"][0]
    assert {"echo", "serena", "quality"} <= set(services["items"]["enum"])
    assert services["minItems"] == 1 and services["uniqueItems"] is True
    started = time.monotonic()
    resp = fuzzed_bridge.api("GET", "/clients/abc%0A")  # a trailing newline: no client can have that id
    assert resp.status_code == 404 and "must match" in resp.json()["error"]["message"]
    assert time.monotonic() - started < 5
