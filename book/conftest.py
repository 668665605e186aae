"""pytest settings for `make nbval` (pytest --nbval-lax book).

nbval waits a fixed 5 seconds for each kernel message that follows a cell's reply (its
`output_timeout`, not configurable from the command line). On a loaded 2-core CI machine the kernel
can take longer than that to publish a cell's last outputs, and nbval then fails the cell with
"Timeout of 5 seconds exceeded waiting for output" and every later cell of the chapter with it (CI,
2026-11-26: chapter 6, cell 1). The cell timeout itself stays nbval's (--nbval-cell-timeout).
"""
import pytest

#: seconds nbval waits for each output message after a cell has replied
OUTPUT_TIMEOUT = 120


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    for item in items:
        if hasattr(item, "output_timeout"):      # nbval's IPyNbCell
            item.output_timeout = OUTPUT_TIMEOUT
