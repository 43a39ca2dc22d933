"""The published OpenAPI document: one schema per name, and the error bodies answers really have."""

import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from pydantic import BaseModel

from config.api import ERROR_RESPONSES, api
from minicrm.accounts.services import api_token_create
from minicrm.campaigns.models import Campaign, Delivery
from tests.factories import AdminFactory

pytestmark = pytest.mark.django_db

REF_TEMPLATE = "#/components/schemas/{model}"


def operation_models() -> Iterator[type[BaseModel]]:
    """Every model a route reads or answers with: its parameters and its responses."""
    for _prefix, router in api._routers:
        for path_view in router.path_operations.values():
            for operation in path_view.operations:
                yield from operation.models
                for model in (operation.response_models or {}).values():
                    if isinstance(model, type) and issubclass(model, BaseModel):
                        yield model


def test_no_two_schemas_share_a_name() -> None:
    # Ninja merges each route's definitions by name, so a second schema called like a first one
    # silently replaced it in the document (bulk row errors were documented with `row`).
    definitions: dict[str, set[str]] = defaultdict(set)
    for model in operation_models():
        schema = model.model_json_schema(ref_template=REF_TEMPLATE)
        for name, definition in schema.get("$defs", {}).items():
            definitions[name].add(json.dumps(definition, sort_keys=True))

    shared = {name: len(found) for name, found in definitions.items() if len(found) > 1}

    assert shared == {}


@pytest.fixture
def document(client: Client) -> dict[str, Any]:
    return client.get("/api/v1/openapi.json").json()


def test_bulk_row_errors_are_documented_as_answered(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    bulk = document["paths"]["/api/v1/customers/bulk"]["post"]["responses"]["200"]
    imported = schemas["ImportDetailOut"]["properties"]["errors"]["items"]

    assert bulk["content"]["application/json"]["schema"] == {
        "$ref": REF_TEMPLATE.format(model="BulkOut")
    }
    assert schemas["BulkOut"]["properties"]["errors"]["items"] == {
        "$ref": REF_TEMPLATE.format(model="BulkRowErrorOut")
    }
    assert schemas["BulkRowErrorOut"]["required"] == ["index", "field", "message"]
    assert imported == {"$ref": REF_TEMPLATE.format(model="ImportRowErrorOut")}
    assert schemas["ImportRowErrorOut"]["required"] == ["row", "field", "message"]


def test_every_operation_documents_every_error_body(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    validation = {"$ref": REF_TEMPLATE.format(model="ValidationErrorOut")}
    detail = {"$ref": REF_TEMPLATE.format(model="ErrorDetailOut")}
    count = 0
    for item in document["paths"].values():
        for operation in item.values():
            for status in ERROR_RESPONSES:
                body = operation["responses"][str(status)]["content"]["application/json"]
                if status == 422:
                    assert body["schema"]["anyOf"][-2:] == [validation, detail]
                    continue
                # A route may name its own body for a status; it is still {"detail": "..."}.
                name = body["schema"]["$ref"].rsplit("/", 1)[1]
                assert schemas[name]["properties"]["detail"]["type"] == "string"
                assert "detail" in schemas[name]["required"]
            count += 1

    assert count == 39
    assert schemas["ErrorDetailOut"]["required"] == ["detail"]
    assert schemas["ValidationErrorOut"]["required"] == ["detail", "message"]


def test_a_route_s_own_422_body_stays_one_of_the_documented_bodies(
    document: dict[str, Any],
) -> None:
    responses = document["paths"]["/api/v1/customers/bulk"]["post"]["responses"]

    assert responses["422"]["content"]["application/json"]["schema"]["anyOf"] == [
        {"$ref": REF_TEMPLATE.format(model="BulkRejectedOut")},
        {"$ref": REF_TEMPLATE.format(model="ValidationErrorOut")},
        {"$ref": REF_TEMPLATE.format(model="ErrorDetailOut")},
    ]


def test_validation_and_application_errors_have_the_documented_shapes() -> None:
    _token, raw = api_token_create(user=AdminFactory(), name="tests")
    client = Client(headers={"Authorization": f"Bearer {raw}"})

    invalid = client.get("/api/v1/customers?page=0")
    missing = client.get("/api/v1/customers/12345")

    assert invalid.status_code == 422
    assert invalid.json() == {
        "detail": [
            {
                "type": "greater_than_equal",
                "loc": ["query", "page"],
                "msg": "Input should be greater than or equal to 1",
                "ctx": {"ge": 1},
            }
        ],
        "message": "Invalid input: page",
    }
    assert missing.status_code == 404
    assert set(missing.json()) == {"detail"}


def test_the_campaign_routes_document_their_answers(document: dict[str, Any]) -> None:
    paths = document["paths"]
    schemas = document["components"]["schemas"]

    def answers(path: str, method: str) -> dict[str, str]:
        responses = paths[f"/api/v1{path}"][method]["responses"]
        success = {code: body for code, body in responses.items() if code.startswith("2")}
        return {
            code: body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
            for code, body in success.items()
        }

    assert answers("/campaigns", "get") == {"200": "CampaignListOut"}
    assert answers("/campaigns", "post") == {"201": "CampaignOut"}
    assert answers("/campaigns/{campaign_id}", "get") == {"200": "CampaignOut"}
    assert answers("/campaigns/{campaign_id}", "patch") == {"200": "CampaignOut"}
    assert answers("/campaigns/{campaign_id}/preview", "post") == {"200": "CampaignPreviewOut"}
    assert answers("/campaigns/{campaign_id}/send", "post") == {"202": "CampaignOut"}
    assert answers("/campaigns/{campaign_id}/cancel", "post") == {"200": "CampaignOut"}
    assert answers("/campaigns/{campaign_id}/deliveries", "get") == {"200": "DeliveryListOut"}
    assert answers("/campaigns/{campaign_id}/summary", "post") == {"202": "CampaignOut"}
    assert answers("/deliveries/receipts", "post") == {"200": "ReceiptsAppliedOut"}
    assert {"counters", "results", "summary"} <= set(schemas["CampaignOut"]["required"])
    assert schemas["CampaignPreviewOut"]["required"] == ["audience", "excluded", "samples"]
    assert schemas["CampaignSampleOut"]["required"] == ["customer_id", "to", "subject", "body"]
    assert schemas["CampaignStatusName"]["enum"] == list(Campaign.Status.values)
    assert schemas["DeliveryStatusName"]["enum"] == list(Delivery.Status.values)
    send_body = paths["/api/v1/campaigns/{campaign_id}/send"]["post"]["requestBody"]
    assert send_body.get("required", False) is False  # sending now needs no body
    receipts_401 = paths["/api/v1/deliveries/receipts"]["post"]["responses"]["401"]
    assert receipts_401["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ReceiptSignatureErrorOut"
    )
