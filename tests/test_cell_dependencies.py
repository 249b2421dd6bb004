"""The static analysis the browser test uses to run an Explore panel's cell with only the cells it needs."""

import pytest
from cell_dependencies import cell_names, cells_needed


def test_a_cell_needs_the_last_binder_of_each_name_it_reads():
    sources = ["import numpy as np", "x = 1", "x = 2", "y = np.zeros(x)"]
    assert cells_needed(sources, 3) == [0, 2, 3]


def test_dependencies_are_transitive_and_unrelated_cells_are_left_out():
    sources = ["a = 1", "expensive = sum(range(10**6))", "b = a + 1", "print(b)"]
    assert cells_needed(sources, 3) == [0, 2, 3]


def test_a_functions_own_locals_and_a_comprehensions_variables_are_not_reads():
    sources = ["x = 0", "i = 5", "def draw(ax, x):\n    y = x + 1\n    return [i for i in range(y)]",
               "draw(None, 3)"]
    assert cells_needed(sources, 3) == [2, 3]
    binds, mutates, needs = cell_names(sources[2])
    assert binds == {"draw"} and not mutates and needs == set()


def test_a_global_read_inside_a_function_body_is_a_read_of_the_cell():
    sources = ["SCALE = 2", "def f(v):\n    return SCALE * v", "f(1)"]
    assert cells_needed(sources, 2) == [0, 1, 2]


def test_a_name_read_before_the_cell_rebinds_it_needs_the_earlier_binder():
    sources = ["n = 1", "n = n + 1\nprint(n)"]
    assert cells_needed(sources, 1) == [0, 1]


def test_cells_that_change_an_object_in_place_are_needed_too():
    sources = ["runs = {}", "runs['a'] = 1", "model.weight = 3", "other = 1", "print(runs['a'])"]
    assert cells_needed(sources, 4) == [0, 1, 4]


def test_magics_are_ignored_and_loop_and_with_targets_bind():
    sources = ["%matplotlib inline\nfor k in range(3):\n    pass\nwith open('f') as fh:\n    pass",
               "print(k, fh)"]
    assert cells_needed(sources, 1) == [0, 1]


def test_a_target_outside_the_cells_is_a_clear_error():
    with pytest.raises(ValueError, match="target"):
        cells_needed(["x = 1"], 1)
