"""The library is generated from the notebooks, and the notebooks are committed clean: running nbdev_export and
nbdev_clean on a copy of the tree must change nothing."""
import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _copy(tmp_path):
    dst = tmp_path / 'tree'
    dst.mkdir()
    for name in ('settings.ini', 'setup.py', 'README.md'):
        shutil.copy(ROOT / name, dst / name)
    for name in ('nbs', 'piflow_ref'):
        shutil.copytree(ROOT / name, dst / name, ignore=shutil.ignore_patterns('__pycache__', '.ipynb_checkpoints'))
    return dst


def _diff(a: Path, b: Path):
    "Relative paths of files that differ, or exist on one side only, between two folders."
    cmp = filecmp.dircmp(a, b, ignore=['__pycache__', '.ipynb_checkpoints'])
    out = [str(Path(a.name) / p) for p in cmp.left_only + cmp.right_only + cmp.diff_files]
    for sub in cmp.subdirs: out += _diff(a / sub, b / sub)
    return out


@pytest.mark.parametrize('tool', ['nbdev_export', 'nbdev_clean'])
def test_tool_leaves_tree_unchanged(tool, tmp_path):
    tree = _copy(tmp_path)
    res = subprocess.run([str(BIN / tool)], cwd=tree, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    changed = _diff(ROOT / 'nbs', tree / 'nbs') + _diff(ROOT / 'piflow_ref', tree / 'piflow_ref')
    hint = 'run `nbdev_export` and commit' if tool == 'nbdev_export' else 'run `nbdev_clean` and commit'
    assert not changed, f'{tool} changed {changed}: {hint}'
