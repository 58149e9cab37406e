"""The course (issue 13): every chapter's exercises pass with their solutions and fail without them, `make exercises`
writes the student notebooks without solutions, and `make site` builds pages whose links and images resolve."""
from pathlib import Path

import nbformat
import pytest

from piflow_ref.course import CHAPTERS, build_site, check_exercises, check_site, find_exercises, write_exercises

ROOT = Path(__file__).resolve().parents[1]
WITH_EXERCISES = ['00_flow', '00a_metrics', '01_toy_teacher', '02_gmflow_policy', '03_piid', '03a_guidance', '04_mnist',
                  '04a_dit', '04b_imagenet', '04c_imagenet_io', '05_scaling']


@pytest.mark.parametrize('name', WITH_EXERCISES)
def test_checks_pass_with_the_solution_and_fail_without(name):
    nb = nbformat.read(ROOT / 'nbs' / f'{name}.ipynb', as_version=4)
    found = find_exercises(nb)
    code, answers = [e for e in found if e.kind == 'code'], [e for e in found if e.kind == 'answer']
    assert 2 <= len(code) <= 4 and 2 <= len(answers) <= 3, (len(code), len(answers))
    for row in check_exercises(nb):
        assert row['solution'] == 'pass' and row['stripped'] != 'pass' and row['returns None'] != 'pass', row


def test_make_exercises_strips_every_solution(tmp_path):
    files = write_exercises(ROOT / 'nbs', tmp_path)
    assert sorted(p.stem for p in files) == sorted(WITH_EXERCISES)
    for p in files:
        nb = nbformat.read(p, as_version=4)
        text = '\n'.join(''.join(c['source']) for c in nb.cells)
        assert 'BEGIN SOLUTION' not in text and '**Answer.**' not in text, p.name
        assert 'raise NotImplementedError()' in text and 'YOUR ANSWER HERE' in text, p.name
        assert not any(c.get('outputs') for c in nb.cells if c['cell_type'] == 'code'), p.name


def test_bad_exercise_markup():
    from nbformat.v4 import new_code_cell, new_notebook
    meta = lambda gid, **kw: {'nbgrader': {'grade_id': gid, 'solution': False, 'grade': False, **kw}}
    lone = new_notebook(cells=[new_code_cell('assert True', metadata=meta('ex9-1-check', grade=True))])
    with pytest.raises(ValueError, match='follows no solution cell'): find_exercises(lone)
    unchecked = new_notebook(cells=[new_code_cell('def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION', metadata=meta('ex9-1', solution=True))])
    with pytest.raises(ValueError, match='has no check cells'): find_exercises(unchecked)


def test_site_builds_and_resolves(tmp_path):
    pages = build_site(ROOT / 'nbs', tmp_path)
    assert [p.stem for p in pages][:len(CHAPTERS)] == CHAPTERS                     # every chapter, in the syllabus' order
    report = check_site(tmp_path)
    assert report['pages'] == len(pages) and report['images'] >= 20 and report['links'] >= len(pages), report
    assert 'src="mathjax/MathJax.js' in (tmp_path / '02_gmflow_policy.html').read_text()   # reads offline: a local MathJax
    (tmp_path / 'extra.html').write_text('<a href="nowhere.html">x</a><img src="missing.png">')
    with pytest.raises(ValueError, match='nowhere.html') as e: check_site(tmp_path)
    assert 'missing.png' in str(e.value)
