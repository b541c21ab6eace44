"""`/docs` and `/redoc` work offline (SPEC §8): every script, style and icon they load is served
by the API itself, never by a CDN."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from iska_pipelines_tests.api_server import api_settings

TOKEN = "docs-token"


class AssetUrls(HTMLParser):
    """The URLs a page loads by itself: <script src>, <link href>, <img src>."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        wanted = {"script": "src", "link": "href", "img": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


def asset_urls(html: str) -> list[str]:
    parser = AssetUrls()
    parser.feed(html)
    return parser.urls


@pytest.fixture
def guarded(tmp_path, start_api):
    return start_api(
        api_settings(f"sqlite:///{tmp_path / 'iska.sqlite3'}", tmp_path / "data", ISKA_API_TOKEN=TOKEN)
    )


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_every_script_and_style_from_the_api_itself(guarded, page):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    answer = requests.get(guarded.base_url + page, headers=headers, timeout=10)
    assert answer.status_code == 200 and "text/html" in answer.headers["content-type"]
    urls = asset_urls(answer.text)
    assert any(url.endswith(".js") for url in urls), urls
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page} loads {url} from elsewhere"
        asset = requests.get(urljoin(guarded.base_url + page, url), headers=headers, timeout=10)
        assert asset.status_code == 200 and asset.content, url
