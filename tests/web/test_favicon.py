"""Every page names the app's icon, and the icon is one of our static files."""

from django.contrib.staticfiles import finders
from django.templatetags.static import static
from django.test import Client


def test_pages_link_the_favicon_and_it_exists(admin_client: Client) -> None:
    html = admin_client.get("/settings/").content.decode()
    assert f'<link rel="icon" href="{static("minicrm/img/favicon.svg")}"' in html
    icon = finders.find("minicrm/img/favicon.svg")
    assert icon is not None
    with open(icon, encoding="utf-8") as handle:
        assert handle.read().startswith("<svg")
