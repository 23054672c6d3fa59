"""The scale benchmark's measures (`bench/scale.py`): what its table says
is computed from the runs' logs by these functions, so they are pinned
here on hand-made logs."""

from bench.scale import count_overlaps, lateness, lateness_within

REPEAT = 60


def test_lateness_against_due_and_against_the_kill():
    runs = {
        # due at 160 (ended 100), ran at 161: 1 s late either way
        "a": [(90, 100), (161, 162)],
        # due at 130, killed at 150, ran at 158: 28 s late, 8 s after the kill
        "b": [(60, 70), (158, 159)],
        # did not run after the kill: not counted
        "c": [(60, 70)],
    }
    assert sorted(lateness(runs, ["a", "b", "c"], 150, REPEAT)) == [1, 28]
    assert sorted(lateness(runs, ["a", "b", "c"], 150, REPEAT, since=150)) == [1, 8]


def test_lateness_within_counts_a_job_that_did_not_start():
    runs = {
        "on_time": [(0, 1), (61, 62)],  # due 61, started 61
        "late": [(0, 2), (65, 66)],  # due 62, started 65
        "waiting": [(0, 10)],  # due 70, not started by 100: at least 30 s late
        "not_yet": [(50, 50.5)],  # due 110.5: after the window
        "before": [(0, 1), (61, 62), (122, 123)],  # its start in the window: due 122, on time
    }
    assert lateness_within(runs, 60, 100, REPEAT) == [0, 0, 3, 30]
    # a job due within the window that started after it is still counted there
    assert lateness_within({"x": [(0, 10), (105, 106)]}, 60, 100, REPEAT) == [30]


def test_overlaps():
    assert count_overlaps({"a": [(0, 5), (4, 6)], "b": [(0, 1), (2, 3)]}) == 1
