"""Schemathesis against the project's own ``/api/schema/``, in-process, as each staff role.

For every operation of the schema, Schemathesis draws requests that fit it (positive) and
requests that break it (negative), and sends them, with the JWT of an owner, a manager, a
cashier or a kitchen user of the seeded demo restaurant, to the Django WSGI application. Path
ids are drawn from real rows of both tenants as well as random ones, so handlers run on real
orders, tickets and payments, and on another tenant's. Every response must:

- not be a 5xx;
- have a status the schema documents for the operation (``default`` counts), with the
  documented content type and body;
- for any status >= 400, be the error envelope ``{"error": {"code", "message", "details"}}``.

``FUZZ_EXAMPLES`` (default 15) sets the examples per operation and role, two thirds of them
positive.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tenants.models import Role
from tests.factories import access_token

# Each request commits on its own, as in production: a request that fails in the database
# must not poison the ones after it, which one enclosing test transaction would.
pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
ROLES = (Role.OWNER, Role.MANAGER, Role.CASHIER, Role.KITCHEN)
PROVIDERS = ("sandbox", "midtrans", "paypal")


@pytest.fixture
def api_schema(seeded):
    return schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler())


def _resource(path: str) -> str | None:
    """``/api/kds/tickets/{id}/bump/`` -> ``kds/tickets``."""
    parts = path.strip("/").split("/")[1:]
    if "{id}" not in parts:
        return None
    return "/".join(parts[: parts.index("{id}")])


def _strategy(operation, mode: GenerationMode, ids: dict[str, list[str]]):
    params = {p.name for p in operation.path_parameters}
    if "provider" in params:
        return st.sampled_from(PROVIDERS).flatmap(
            lambda provider: operation.as_strategy(mode, path_parameters={"provider": provider})
        )
    pool = ids.get(_resource(operation.path) or "", [])
    if "id" not in params or not pool:
        return operation.as_strategy(mode)
    real = st.sampled_from(pool).flatmap(
        lambda pk: operation.as_strategy(mode, path_parameters={"id": pk})
    )
    return st.one_of(real, real, operation.as_strategy(mode))  # mostly real rows


def _envelope_problem(response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return f"not JSON: {response.text[:120]!r}"
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return f"no error envelope: {str(body)[:160]}"
    if not isinstance(error.get("code"), str) or not isinstance(error.get("message"), str):
        return f"envelope without code/message: {str(error)[:160]}"
    if not isinstance(error.get("details"), dict):
        return f"envelope details not an object: {str(error)[:160]}"
    return None


@dataclass
class Findings:
    failures: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    undocumented: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))

    def lines(self) -> list[str]:
        lines = [f"{kind} ({len(seen)}x), e.g. {seen[0]}"
                 for kind, seen in sorted(self.failures.items())]
        lines += [f"{status} answered but not documented by {len(labels)} operations: "
                  + ", ".join(sorted(labels))
                  for status, labels in sorted(self.undocumented.items())]
        return lines


def _fuzz_operation(schema, operation, mode, ids, headers, findings: Findings) -> None:
    failures, undocumented = findings.failures, findings.undocumented
    share = 2 / 3 if mode == GenerationMode.POSITIVE else 1 / 3

    @settings(max_examples=max(1, round(EXAMPLES * share)), deadline=None, database=None,
              derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=_strategy(operation, mode, ids))
    def run(case) -> None:
        response = case.call(headers=headers)
        where = f"{case.method} {case.formatted_path} [{mode.value}]"
        status = response.status_code
        if status >= 500:
            failures[f"{operation.label}: {status}"].append(
                f"{where} -> {status} {response.text[:300]!r}\n    {case.as_curl_command()}")
            return
        if status >= 400:
            problem = _envelope_problem(response)
            if problem:
                failures[f"{operation.label}: {status} without envelope"].append(
                    f"{where}: {problem}")
        # The schema's own validation, called directly: Case.validate_response would also
        # report to Hypothesis and end the whole run at the first mismatch.
        if operation.responses.find_by_status_code(status) is None:
            undocumented[status].add(operation.label)
            return
        try:
            schema.validate_response(operation, response, case=case)
        except Exception as exc:
            failures[f"{operation.label}: {status} does not match its schema"].append(
                f"{where}: {str(exc)[:600]}")

    run()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("role", ROLES)
def test_generated_requests_are_answered_as_documented(role, seeded, api_schema):
    headers = {"Authorization": f"Bearer {access_token(seeded.users[role])}"}
    findings = Findings()
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz_operation(api_schema, operation, mode, seeded.ids, headers, findings)
    assert operations >= 60
    assert not findings.lines(), "\n".join(findings.lines())
