"""Every URL under /api/v1/ answers as the API does: JSON, even where no route matches."""

import pytest
from django.test import Client


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/v1/"),
        ("post", "/api/v1/"),
        ("get", "/api/v1/no-such-thing"),
        ("post", "/api/v1/no/such/thing/"),
        ("delete", "/api/v1/customers/1/orders/2"),
    ],
)
def test_an_unknown_api_url_is_a_json_404(db: None, client: Client, method: str, url: str) -> None:
    response = getattr(client, method)(url)

    assert response.status_code == 404
    assert response["Content-Type"].split(";")[0] == "application/json"
    assert response.json() == {"detail": "No such API URL."}
