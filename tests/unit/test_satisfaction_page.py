"""The satisfaction page: the form posts to itself, five ratings, the customer's words as text."""

from __future__ import annotations

import re

import pytest

from chalicelib.domain.case import Language
from chalicelib.web.pages import RATING_LABELS, satisfaction_page


@pytest.mark.parametrize("language", list(Language))
def test_ask_is_a_form_posting_to_itself_with_five_ratings(language: Language) -> None:
    page = satisfaction_page(language, case_number="SD-2026-000042", state="ask")
    assert f'<html lang="{language.value}">' in page
    assert 'method="post" action=""' in page
    assert len(re.findall(r'<input type="radio"[^>]*name="rating"', page)) == 5
    for n in range(1, 6):
        assert f'value="{n}"' in page
        assert RATING_LABELS[language][n] in page
    assert 'name="comment" maxlength="2000"' in page
    assert 'type="submit"' in page
    assert "checked" not in page
    assert "SD-2026-000042" in page
    other = "en" if language is Language.ZH else "zh"
    assert f'href="?lang={other}"' in page


def test_labels_in_both_languages() -> None:
    zh = satisfaction_page(Language.ZH, case_number="1", state="ask")
    en = satisfaction_page(Language.EN, case_number="1", state="ask")
    assert "非常不满意" in zh and "非常满意" in zh
    assert "Very unhappy" in en and "Very happy" in en


def test_case_number_and_comment_are_escaped() -> None:
    page = satisfaction_page(
        language=Language.EN,
        case_number="<script>x</script>",
        state="ask",
        comment="</textarea><script>y</script>",
    )
    assert "<script>x" not in page
    assert "<script>y" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page
    assert "&lt;/textarea&gt;&lt;script&gt;y" in page


@pytest.mark.parametrize("language", list(Language))
def test_errors_shown_next_to_fields_and_input_kept(language: Language) -> None:
    page = satisfaction_page(
        language,
        case_number="SD-1",
        state="ask",
        rating=4,
        comment="slow <b>",
        errors={"rating": "Pick <one>", "comment": "Too long", "body": "Try again"},
    )
    assert 'id="rating-error">Pick &lt;one&gt;</div>' in page
    assert 'id="comment-error">Too long</div>' in page
    assert "Try again" in page
    assert 'role="alert"' in page
    assert re.search(r'id="rating-4"[^>]*\s+checked>', page)
    assert page.count("checked") == 1
    assert ">slow &lt;b&gt;</textarea>" in page


@pytest.mark.parametrize("language", list(Language))
def test_thanks_shows_the_rating_and_a_way_to_change_it(language: Language) -> None:
    page = satisfaction_page(language, case_number="SD-1", state="thanks", rating=2)
    assert "<form" not in page
    assert 'id="given-rating">2 / 5 — ' + RATING_LABELS[language][2] in page
    assert f'href="?change=1&amp;lang={language.value}"' in page


@pytest.mark.parametrize("language", list(Language))
def test_not_now(language: Language) -> None:
    page = satisfaction_page(language, case_number="SD-1", state="not_now")
    assert "<form" not in page
    text = "nothing to rate" if language is Language.EN else "没有需要评价"
    assert text in page
