"""Every notebook is a test: run it with nbdev's own runner in test mode (IN_TEST=1), skipping `tst_flags` cells."""
from pathlib import Path

import pytest
from nbdev.config import get_config
from nbdev.test import test_nb as run_notebook  # renamed so that pytest does not collect it

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / 'nbs').glob('*.ipynb'))


def test_found_notebooks():
    "Every chapter is collected (a renamed or lost notebook would silently drop its tests)."
    names = {p.stem for p in NOTEBOOKS}
    assert {'index', '00_flow', '00a_metrics', '01_toy_teacher', '02_gmflow_policy', '03_piid', '03a_guidance',
            '04_mnist', '04a_dit', '04b_imagenet', '04c_imagenet_io', '05_scaling', 'utils', 'cli', 'bench', 'course'} <= names, names


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook(nb):
    skip = get_config(path=ROOT).tst_flags.split()
    ok, seconds = run_notebook(nb, skip_flags=skip, basepath=ROOT)
    print(f'{nb.name}: {seconds:.1f} s')
    assert ok, f'{nb.name} failed (its traceback is printed above)'


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_stored_outputs_small(nb):
    "The executed notebooks are the docs: each one's stored outputs stay under 1 MB (figures at about 100 dpi)."
    import json
    cells = json.loads(nb.read_text())['cells']
    size = sum(len(json.dumps(c.get('outputs', []))) for c in cells if c['cell_type'] == 'code')
    assert size <= 1_000_000, f'{nb.name} stores {size / 1e6:.2f} MB of outputs'
