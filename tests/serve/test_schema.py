"""A bounded Schemathesis run over the published OpenAPI schema: every response matches what the schema says.

Each operation gets at most `EXAMPLES` generated requests (valid and invalid ones), sent in-process to the ASGI
app, and Schemathesis's default checks: no 5xx, only documented status codes, content types and bodies that
match the schema, invalid input refused, valid input accepted. One exception: a schema cannot say "a decodable
video", so generated uploads (random bytes) are refused with the documented 415/422 and the upload operation
skips the "valid input accepted" check; tests/serve/test_uploads.py covers real clips. Nor can it say "end after
start, at most 600 s later, start inside the video", so the clip export skips that check too (it still gets a
documented 404 or 422, never a 5xx); tests/serve/test_clip_api.py covers those rules.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.serve.conftest import Served

pytestmark = pytest.mark.slow  # about a minute: a model, an index and 200 requests
EXAMPLES = 25
UNDESCRIBABLE = {
    ("POST", "/api/search/video"): [positive_data_acceptance],
    ("GET", "/api/videos/{video_id}/clip"): [positive_data_acceptance],
}


@pytest.fixture(scope="module")
def api_schema(served: Served):  # noqa: ANN201
    return schemathesis.openapi.from_asgi("/openapi.json", served.client.app)


def test_the_schema_lists_every_api_operation(api_schema) -> None:  # noqa: ANN001
    labels = {result.ok().label for result in api_schema.get_all_operations()}
    assert labels == set(OPERATIONS_LABELS)


OPERATIONS = [
    ("GET", "/api/search"),
    ("GET", "/api/search/similar"),
    ("POST", "/api/search/video"),
    ("GET", "/api/health"),
    ("GET", "/api/stats"),
    ("GET", "/api/videos/{video_id}/file"),
    ("GET", "/api/videos/{video_id}/thumbnail"),
    ("GET", "/api/videos/{video_id}/clip"),
]
OPERATIONS_LABELS = [f"{method} {path}" for method, path in OPERATIONS]


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=OPERATIONS_LABELS)
def test_every_operation_answers_as_its_schema_says(api_schema, method: str, path: str) -> None:  # noqa: ANN001
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def conforms(case) -> None:  # noqa: ANN001
        case.call_and_validate(excluded_checks=UNDESCRIBABLE.get((method, path)))

    conforms()
