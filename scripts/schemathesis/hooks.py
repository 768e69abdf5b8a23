"""Schemathesis hooks of scripts/schemathesis.sh.

`only_unauthorized`: the check of the run without an API key. Every non-public operation must
answer 401 with the service's one error body (`{"error": {"type": "authentication", ...}}`),
whatever the generated request looks like: authentication comes before validation, body parsing
and upstream calls. The one exception is schemathesis' probe with a method the route does not
have at all (`TRACE /api/tools`): that is not an operation, and answers 405 (with the same error
body) before any authentication, as for a route that does not exist (404).
"""

import schemathesis


@schemathesis.check
def only_unauthorized(ctx, response, case):
    """Without a key every answer is 401 with the standard error body."""
    documented = case.method.upper() == case.operation.method.upper()
    expected, kind = (401, "authentication") if documented else (405, "method_not_allowed")
    if response.status_code != expected:
        raise AssertionError(
            f"expected {expected} without an API key for {case.method.upper()} "
            f"{case.operation.path}, got {response.status_code}"
        )
    try:
        body = response.json()
    except Exception as exc:  # noqa: BLE001 - any parse failure is the finding
        raise AssertionError(f"the body is not JSON: {exc}") from None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or error.get("type") != kind:
        raise AssertionError(f"the {expected} body is not the standard '{kind}' error: {body!r}")
    if not isinstance(error.get("message"), str) or not isinstance(error.get("retryable"), bool):
        raise AssertionError(f"the {expected} body lacks message/retryable: {body!r}")
