"""The Examples of the public API's docstrings run, and show what they print."""

from __future__ import annotations

import doctest

import matplotlib
import matplotlib.pyplot as plt
import pytest

import uqenergy

matplotlib.use("Agg")

FINDER = doctest.DocTestFinder()
EXAMPLES = [
    test for name in uqenergy._API for test in FINDER.find(getattr(uqenergy, name), f"uqenergy.{name}") if test.examples
]


def test_every_public_function_has_examples():
    documented = {test.name.split(".")[1] for test in EXAMPLES}
    assert documented == set(uqenergy._API)


@pytest.mark.parametrize("test", EXAMPLES, ids=lambda test: test.name)
def test_examples_print_what_they_show(test):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    try:
        runner.run(test)
    finally:
        plt.close("all")
    assert runner.failures == 0, f"{runner.failures} of {runner.tries} examples of {test.name} failed (output above)"
