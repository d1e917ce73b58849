"""mladlib.viz.style: the book's figures render at 150 dpi with legible tick labels."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib as mpl  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from mladlib.viz.style import COLUMN_PX, MIN_TEXT_PX, apply_style, displayed_text_px  # noqa: E402


@pytest.fixture
def book_style():
    with mpl.rc_context():
        apply_style()
        yield


def test_figures_render_at_150_dpi_with_9pt_ticks(book_style):
    assert mpl.rcParams["figure.dpi"] >= 150 and mpl.rcParams["savefig.dpi"] >= 150
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    tick = ax.get_xticklabels()[0]
    assert tick.get_fontsize() == 9 and fig.dpi == 150
    # 7 in x 150 dpi = 1050 px shown in the 780-px column: 9 pt -> 18.75 px -> 13.9 px
    assert displayed_text_px(fig) == pytest.approx(9 * 150 / 72 * COLUMN_PX / 1050)
    assert displayed_text_px(fig) >= MIN_TEXT_PX


def test_displayed_size_accounts_for_the_browser_shrinking_wide_figures(book_style):
    fig, ax = plt.subplots(figsize=(14.0, 3.0))
    ax.set_xticks([0, 1], ["a", "b"], fontsize=6)
    # the "tick labels of about 5 px": 6 pt in a 14-inch figure
    assert displayed_text_px(fig) == pytest.approx(6 * 150 / 72 * COLUMN_PX / 2100)
    assert displayed_text_px(fig) < MIN_TEXT_PX
    small, _ = plt.subplots(figsize=(4.0, 3.0))  # narrower than the column: not enlarged
    small.axes[0].set_title("t", fontsize=10)
    small.axes[0].set_xticks([])
    small.axes[0].set_yticks([])
    assert displayed_text_px(small) == pytest.approx(10 * 150 / 72)
    assert displayed_text_px(plt.figure()) == float("inf")
