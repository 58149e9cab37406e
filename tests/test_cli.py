"""The console script: bad input ends with a clear message, and a small run writes what it promises."""
import json
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def run(*args, **kw):
    return subprocess.run([str(BIN / 'piflow-ref'), *args], capture_output=True, text=True, **kw)


def test_unknown_dataset():
    res = run('toy', '--data', 'spirals')
    assert res.returncode == 2 and "invalid choice: 'spirals'" in res.stderr


def test_bad_counts(tmp_path):
    res = run('toy', '--teacher-iters', '0', '--out', str(tmp_path))
    assert res.returncode == 2 and 'teacher_iters must be >= 1' in res.stderr


def test_unwritable_out(tmp_path):
    (tmp_path / 'a-file').write_text('x')
    res = run('toy', '--out', str(tmp_path / 'a-file' / 'sub'))
    assert res.returncode == 2 and 'cannot write to the output folder' in res.stderr


def test_small_run_and_reuse(tmp_path):
    args = ('toy', '--data', 'moons', '--teacher-iters', '200', '--samples', '500', '--no-progress', '--out', str(tmp_path))
    res = run(*args)
    assert res.returncode == 0, res.stderr
    s = json.loads((tmp_path / 'summary.json').read_text())
    assert s['dataset'] == 'moons' and s['teacher']['kind'] == 'mlp' and not s['teacher']['reused']
    assert s['sw2'] > 0 and s['floor'] > 0 and s['n_samples'] == 500
    for name in ('data.png', 'trajectories.png', 'velocity_field.png', 'teacher_loss.png'):
        assert (tmp_path / name).stat().st_size > 1000, name
    assert (tmp_path / 'teacher.safetensors').exists()
    again = run(*args)
    assert again.returncode == 0, again.stderr
    s2 = json.loads((tmp_path / 'summary.json').read_text())
    assert s2['teacher']['reused'] and s2['sw2'] == s['sw2']          # the same teacher, the same samples
