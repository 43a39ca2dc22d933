from minicrm.core.charts import sparkline_points


def test_a_sparkline_needs_two_values():
    assert sparkline_points([]) == ""
    assert sparkline_points([5]) == ""


def test_lowest_value_at_the_bottom_and_highest_at_the_top_of_the_box():
    points = [tuple(map(float, pair.split(","))) for pair in sparkline_points([3, 9, 6]).split()]
    assert points == [(0.0, 22.0), (50.0, 2.0), (100.0, 12.0)]


def test_a_flat_history_is_a_flat_line():
    points = sparkline_points([4, 4, 4], width=10, height=10).split()
    assert {pair.split(",")[1] for pair in points} == {"8.0"}
