from __future__ import annotations

from maillogs import charts


def test_stacked_bars_is_accessible_and_escapes_text():
    svg = charts.stacked_bars(
        key="k",
        title="Mail <per> day",
        desc="desc & more",
        labels=["11-01", "11-02"],
        series=[charts.Series("Inside", "#00f", [3, 0]), charts.Series("Out", "#f00", [1, 6])],
    )
    assert svg.startswith('<svg class="chart" viewBox="0 0 720 242" width="100%" role="img" ')
    assert 'aria-labelledby="k-title k-desc"' in svg
    assert '<title id="k-title">Mail &lt;per&gt; day</title>' in svg
    assert '<desc id="k-desc">desc &amp; more</desc>' in svg
    assert svg.count("<rect") == 3 + 2  # three non-zero segments and two legend keys
    assert "<title>11-02: Out 6</title>" in svg
    assert "style=" not in svg  # the CSP allows no inline styles


def test_axis_tops_are_round_numbers():
    assert [charts._nice(n) for n in (0, 5, 7, 17, 230, 1001)] == [5, 5, 10, 20, 500, 2000]
