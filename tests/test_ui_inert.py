"""Store text shown through pages/_ui.py never becomes a link or a fetch (the browser proof is in
tests/browser/test_store_text_inert.py; this checks the helpers against remark-gfm's own patterns)."""

from __future__ import annotations

import re

from pages import _ui

# mdast-util-gfm-autolink-literal's patterns, run on text after Markdown escapes are resolved.
GFM_URL = re.compile(r"(https?://|www(?=\.))([-.\w]+)([^ \t\r\n]*)", re.IGNORECASE)
GFM_EMAIL = re.compile(r"([-.\w+]+)@([-\w]+(?:\.[-\w]+)+)")
SAMPLES = ["https://evil.example/suite", "see http://x.io/a?b=c", "WWW.evil.example", "mail bob@evil.example"]


def _unescaped(markdown: str) -> str:
    return re.sub(r"\\(.)", r"\1", markdown)


def test_plain_leaves_no_autolink_pattern_and_reads_the_same():
    for text in SAMPLES:
        shown = _unescaped(_ui.plain(text))
        assert not GFM_URL.search(shown) and not GFM_EMAIL.search(shown), shown
        assert shown.replace(_ui.WORD_JOINER, "") == text


def test_guidelines_keep_formatting_and_drop_links_images_and_html(monkeypatch):
    shown = []
    monkeypatch.setattr(_ui.st, "html", shown.append)
    _ui.guidelines("## Rules\n**bold**\n\n![p](http://b/i.png) [w](http://b/l) <http://b/a>\n\n"
                   '[r]: http://b/ref\n\n<img src="http://b/h.png">\n\n| a |\n|---|\n| 1 |')
    html = shown[0]
    assert "<h2>Rules</h2>" in html and "<strong>bold</strong>" in html and "<table>" in html
    assert "<a" not in html and "<img" not in html and "&lt;img" in html
