"""Pages build their headers through <c-page-header>: breadcrumb, badge, subtitle, meta, actions."""

from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.test.html import Element, parse_html

from minicrm.accounts.models import User
from minicrm.campaigns.services import campaign_create
from minicrm.segments.models import Segment
from minicrm.segments.rules import parse_rules
from minicrm.segments.services import segment_create
from tests.factories import CustomerFactory

COMPONENT = Path(settings.BASE_DIR) / "minicrm/web/templates/cotton/page_header.html"


def _elements(node: Element) -> list[Element]:
    return [child for child in node.children if isinstance(child, Element)]


def _classes(node: Element) -> set[str]:
    return set(dict(node.attributes).get("class", "").split())


def _header(html: str) -> Element:
    """The page's one `.page-header` element."""
    found: list[Element] = []
    stack = [parse_html(html)]
    while stack:
        node = stack.pop()
        if "page-header" in _classes(node):
            found.append(node)
        stack += _elements(node)
    assert len(found) == 1, f"{len(found)} page headers"
    return found[0]


def _text(node: Element | str) -> str:
    if isinstance(node, str):
        return node
    return " ".join(_text(child) for child in node.children).strip()


def _segment(marketer: User) -> Segment:
    CustomerFactory(city="Pune")
    return segment_create(
        name="Pune & co",
        description="Everyone in Pune",
        rules=parse_rules(
            {"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": "Pune"}]}
        ),
        created_by=marketer,
    )


def test_no_page_template_builds_a_page_header_by_hand() -> None:
    hand_built = [
        str(path.relative_to(settings.BASE_DIR))
        for path in (Path(settings.BASE_DIR) / "minicrm").rglob("templates/**/*.html")
        if path != COMPONENT and 'class="page-header' in path.read_text()
    ]
    assert hand_built == []


@pytest.mark.django_db
def test_the_segment_detail_header_has_its_breadcrumb_meta_and_actions(
    marketer_client: Client, marketer: User
) -> None:
    segment = _segment(marketer)

    html = marketer_client.get(f"/segments/{segment.pk}/").content.decode()
    header = _header(html)

    text, actions = _elements(header)
    breadcrumb, title, meta = _elements(text)
    assert (breadcrumb.name, _classes(breadcrumb)) == ("p", {"small"})
    (link,) = _elements(breadcrumb)
    assert (dict(link.attributes)["href"], _text(link)) == ("/segments/", "Segments")
    assert (title.name, _text(title)) == ("h1", "Pune & co")
    assert "<h1>Pune &amp; co</h1>" in html  # the title attribute is escaped once
    assert _classes(meta) == {"seg-summary"}
    assert "Everyone in Pune" in _text(meta)
    assert _classes(actions) == {"row"}
    assert [_text(button) for button in _elements(actions)] == ["Edit", "Delete"]


@pytest.mark.django_db
def test_a_viewer_sees_the_segment_header_without_an_actions_row(
    viewer_client: Client, marketer: User
) -> None:
    segment = _segment(marketer)

    header = _header(viewer_client.get(f"/segments/{segment.pk}/").content.decode())

    (text,) = _elements(header)
    assert [child.name for child in _elements(text)] == ["p", "h1", "div"]


@pytest.mark.django_db
def test_the_campaign_header_has_the_status_badge_beside_the_title_and_its_meta_line(
    marketer_client: Client, marketer: User
) -> None:
    segment = _segment(marketer)
    campaign = campaign_create(
        created_by=marketer, name="Spring", segment_id=segment.pk, template="Hi", channel="log"
    )

    header = _header(marketer_client.get(f"/campaigns/{campaign.pk}/").content.decode())

    text, _actions = _elements(header)
    title_row, meta = _elements(text)
    assert _classes(title_row) == {"row"}
    title, badge = _elements(title_row)
    assert (title.name, _text(title), _text(badge)) == ("h1", "Spring", "Draft")
    assert (meta.name, _classes(meta)) == ("p", {"cmp-meta"})
    assert "Pune & co" in _text(meta)


@pytest.mark.django_db
def test_the_campaign_list_subtitle_slot_keeps_its_links(
    viewer_client: Client, marketer: User
) -> None:
    segment = _segment(marketer)

    header = _header(viewer_client.get(f"/campaigns/?segment={segment.pk}").content.decode())

    (text,) = _elements(header)
    title, subtitle = _elements(text)
    assert (title.name, _text(title), subtitle.name) == ("h1", "Campaigns", "p")
    links = [dict(link.attributes)["href"] for link in _elements(subtitle)]
    assert links == [f"/segments/{segment.pk}/", "/campaigns/"]
