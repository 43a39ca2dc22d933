"""POST /api/v1/deliveries/receipts: vendor-signed, never a 500, nothing applied if refused."""

import json
from typing import Any

import pytest
from django.test import Client, override_settings

from minicrm.campaigns.models import Delivery
from minicrm.campaigns.receipts import MAX_RECEIPTS_PER_BATCH
from minicrm.campaigns.signing import sign

from .test_receipts import assert_counters_equal_rows, sent_campaign

pytestmark = pytest.mark.django_db

URL = "/api/v1/deliveries/receipts"
SECRET = "receipts-test-secret"


@pytest.fixture(autouse=True)
def webhook_secret():
    with override_settings(MINICRM_WEBHOOK_SECRET=SECRET):
        yield


def post(body: bytes, signature: str | None = "sign", client: Client | None = None) -> Any:
    headers = {}
    if signature == "sign":
        headers["X-MiniCRM-Signature"] = sign(body, SECRET)
    elif signature is not None:
        headers["X-MiniCRM-Signature"] = signature
    return (client or Client()).post(
        URL, data=body, content_type="application/json", headers=headers
    )


def receipts_body(*receipts: dict[str, Any]) -> bytes:
    return json.dumps({"receipts": list(receipts)}).encode()


def statuses() -> list[str]:
    return list(Delivery.objects.order_by("vendor_id").values_list("status", flat=True))


def test_a_signed_batch_is_applied_and_counted(marketer):
    campaign = sent_campaign(marketer, 3)
    body = receipts_body(
        {"vendor_id": "Spring-0", "status": "delivered", "at": "2026-03-01T12:00:00Z"},
        {"vendor_id": "Spring-1", "status": "failed", "reason": "Mailbox full"},
        {"vendor_id": "Spring-1", "status": "failed", "reason": "Mailbox full"},
        {"vendor_id": "someone-else", "status": "delivered"},
    )

    response = post(body)

    assert response.status_code == 200
    assert response.json() == {"applied": 2, "duplicate": 1, "unknown": 1, "stale": 0}
    assert statuses() == ["delivered", "failed", "sent"]
    assert Delivery.objects.get(vendor_id="Spring-1").error == "Mailbox full"
    assert_counters_equal_rows(campaign)
    # The vendor posting the same batch again changes nothing.
    assert post(body).json() == {"applied": 0, "duplicate": 3, "unknown": 1, "stale": 0}


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "sha256=" + "0" * 64,
        "md5=abc",
        "sha256=" + "é",
        "sha256=" + sign(b"another body", SECRET)[7:],
        sign(receipts_body({"vendor_id": "Spring-0", "status": "delivered"}), "wrong-secret"),
    ],
    ids=["missing", "empty", "zeros", "other-scheme", "non-ascii", "other-body", "other-secret"],
)
def test_a_missing_or_wrong_signature_is_401_and_applies_nothing(marketer, signature):
    campaign = sent_campaign(marketer, 1)
    body = receipts_body({"vendor_id": "Spring-0", "status": "delivered"})

    response = post(body, signature=signature)

    assert response.status_code == 401
    assert set(response.json()) == {"detail"}
    assert "X-MiniCRM-Signature" in response.json()["detail"]
    assert statuses() == ["sent"]
    assert_counters_equal_rows(campaign)


def test_without_a_configured_secret_nothing_is_accepted(marketer):
    sent_campaign(marketer, 1)
    body = receipts_body({"vendor_id": "Spring-0", "status": "delivered"})

    with override_settings(MINICRM_WEBHOOK_SECRET=""):
        response = post(body, signature=sign(body, ""))

    assert response.status_code == 401
    assert "secret" in response.json()["detail"]
    assert statuses() == ["sent"]


def test_a_user_token_or_session_is_not_a_vendor(marketer, api_client, marketer_client):
    sent_campaign(marketer, 1)
    body = receipts_body({"vendor_id": "Spring-0", "status": "delivered"})

    for client in (api_client, marketer_client):
        assert post(body, signature=None, client=client).status_code == 401

    assert statuses() == ["sent"]


def test_the_signature_is_checked_before_the_body_is_read(marketer):
    # An unsigned caller learns nothing about the body's shape.
    assert post(b"{not json", signature=None).status_code == 401
    assert post(b'{"receipts": 3}', signature="sha256=00").status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"receipts": [{"vendor_id": "v", "status": "bounced"}]}, "receipts.0.status"),
        ({"receipts": [{"status": "delivered"}]}, "receipts.0.vendor_id"),
        ({"receipts": [{"vendor_id": 7, "status": "delivered"}]}, "receipts.0.vendor_id"),
        (
            {"receipts": [{"vendor_id": "v", "status": "failed", "at": "yesterday"}]},
            "receipts.0.at",
        ),
        (
            {"receipts": [{"vendor_id": "v", "status": "failed", "at": "0001-01-01T00:00:00Z"}]},
            "receipts.0.at",
        ),
        (
            {"receipts": [{"vendor_id": "v", "status": "failed", "reason": ["x"]}]},
            "receipts.0.reason",
        ),
        ({"receipts": [{"vendor_id": "v\u0000", "status": "failed"}]}, "receipts.0.vendor_id"),
        ({"receipts": {"vendor_id": "v"}}, "receipts"),
        ({"items": []}, "receipts"),
        ([], "payload"),
    ],
)
def test_a_signed_body_of_the_wrong_shape_is_422_naming_the_field(marketer, body, field):
    sent_campaign(marketer, 1)

    response = post(json.dumps(body).encode())

    assert response.status_code == 422
    assert field in response.json()["message"]
    assert statuses() == ["sent"]


def test_signed_bytes_that_are_not_json_are_a_400_as_everywhere_in_the_api():
    response = post(b"{not json")

    assert response.status_code == 400
    assert response.json() == {"detail": "Cannot parse request body"}


def test_a_batch_over_the_limit_is_422_naming_receipts(marketer):
    sent_campaign(marketer, 1)
    receipt = {"vendor_id": "Spring-0", "status": "delivered"}

    response = post(receipts_body(*[receipt] * (MAX_RECEIPTS_PER_BATCH + 1)))

    assert response.status_code == 422
    assert "receipts" in response.json()["message"]
    assert statuses() == ["sent"]


def test_the_route_is_documented_with_its_signature_and_answers(client):
    document = client.get("/api/v1/openapi.json").json()
    operation = document["paths"][URL]["post"]
    schemes = document["components"]["securitySchemes"]

    assert operation["security"] == [{"VendorSignatureAuth": []}]
    assert schemes["VendorSignatureAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-MiniCRM-Signature",
    }
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/ReceiptsAppliedOut"}
    applied = document["components"]["schemas"]["ReceiptsAppliedOut"]
    assert applied["required"] == ["applied", "duplicate", "unknown", "stale"]
    refused = operation["responses"]["401"]["content"]["application/json"]["schema"]
    assert refused == {"$ref": "#/components/schemas/ReceiptSignatureErrorOut"}
