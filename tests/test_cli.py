"""The console script: bad input ends with a clear message, and a small run writes what it promises.

Runs that do work go through the installed `piflow-ref` script in a subprocess (`run`); bad input that is refused
before any work calls the same `main` in this process (`call`), which spares a Python start-up (about 6 s) per case."""
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from piflow_ref.cli import main

BIN = Path(sys.executable).parent


def run(*args, **kw):
    return subprocess.run([str(BIN / 'piflow-ref'), *args], capture_output=True, text=True, **kw)


@pytest.fixture
def call(capsys):
    "`call(*args)`: `piflow-ref args` run by `main` in this process; returns what `run` does (returncode, stdout, stderr)."
    def _call(*args):
        try: main([str(a) for a in args]); code = 0
        except SystemExit as e: code = e.code
        out, err = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)
    return _call


def test_console_script_refuses_bad_input(tmp_path):
    "The installed script itself: argparse's refusal and the exit code reach the shell."
    res = run('toy', '--data', 'spirals', '--out', str(tmp_path))
    assert res.returncode == 2 and "invalid choice: 'spirals'" in res.stderr


def test_bad_counts(tmp_path, call):
    res = call('toy', '--teacher-iters', '0', '--out', tmp_path)
    assert res.returncode == 2 and 'teacher_iters (--teacher-iters) must be >= 1' in res.stderr


def test_unwritable_out(tmp_path, call):
    (tmp_path / 'a-file').write_text('x')
    res = call('toy', '--out', tmp_path / 'a-file' / 'sub')
    assert res.returncode == 2 and 'cannot write to the output folder' in res.stderr


def test_bad_nfe_and_method(tmp_path, call):
    res = call('toy', '--nfe', '0', '--out', tmp_path)
    assert res.returncode == 2 and 'NFE values must be integers >= 1' in res.stderr
    res = call('toy', '--methods', 'gan', '--out', tmp_path)
    assert res.returncode == 2 and "unknown method 'gan'" in res.stderr


def test_small_run_and_reuse(tmp_path, call):
    args = ('toy', '--data', 'moons', '--teacher-iters', '200', '--iters', '4', '--batch', '32', '--samples', '400',
            '--nfe', '1', '2', '--methods', 'piflow-gm', 'x0-regression', '--ablations', '--no-progress', '--out', str(tmp_path))
    res = run(*args)
    assert res.returncode == 0, res.stderr
    m = json.loads((tmp_path / 'metrics.json').read_text())
    assert m['dataset'] == 'moons' and m['teacher']['kind'] == 'mlp' and not m['teacher']['reused'] and m['floor'] > 0
    got = [(r['method'], r['nfe']) for r in m['rows']]
    assert got[:7] == [('teacher-euler', 128), ('teacher-euler', 1), ('piflow-gm', 1), ('x0-regression', 1),
                       ('teacher-euler', 2), ('piflow-gm', 2), ('x0-regression', 2)], got
    assert {r['method'] for r in m['rows'][7:]} == {'piflow-gm-K1', 'piflow-gm-no-dropout', 'piflow-gm-window3', 'piflow-gm-data-free'}
    for r in m['rows']:
        assert set(r) >= {'method', 'nfe', 'seed', 'sw2', 'ratio', 'alignment', 'seconds', 'teacher_calls'} and r['sw2'] > 0 and r['ratio'] > 0
    calls = {(r['method'], r['nfe']): r['teacher_calls'] for r in m['rows']}
    assert calls[('piflow-gm', 1)] == 4 * 32 * 2 and calls[('x0-regression', 1)] == 4 * 32 * 128   # N = 2 vs the whole ODE
    assert '| piflow-gm | 1 |' in (tmp_path / 'metrics.md').read_text() and 'π-Flow GM' in res.stdout
    for name in ('data.png', 'trajectories.png', 'velocity_field.png', 'teacher.png', 'samples.png', 'student_trajectories.png'):
        assert (tmp_path / name).stat().st_size > 1000, name
    assert (tmp_path / 'teacher.safetensors').exists() and (tmp_path / 'students' / 'piflow-gm-1-seed0.safetensors').exists()
    again = run(*args)
    assert again.returncode == 0, again.stderr
    m2 = json.loads((tmp_path / 'metrics.json').read_text())
    assert m2['teacher']['reused']
    for a, b in zip(m['rows'], m2['rows']):          # students reloaded, not retrained: the same samples
        assert a['sw2'] == b['sw2'] and a['train_seconds'] == b['train_seconds'], (a, b)
    umask = os.umask(0); os.umask(umask)
    for name in ('metrics.json', 'metrics.md', 'samples.png', 'students/piflow-gm-1-seed0.safetensors'):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name     # written atomically, usual mode
    other = call(*[('300' if a == '200' else a) for a in args])                     # another teacher budget: refused
    assert other.returncode == 2 and 'differs in: teacher_iters (200 there, 300 now)' in other.stderr, other.stderr
    assert json.loads((tmp_path / 'metrics.json').read_text()) == m2               # and nothing was touched
    shorter = call(*[('2' if a == '4' else a) for a in args])
    assert shorter.returncode == 2 and 'more than the 2 asked' in shorter.stderr, shorter.stderr


def test_bench_out_folder(tmp_path, call):
    res = call('bench', 'policy', '--out', tmp_path)                           # refused before the benchmark runs
    assert res.returncode == 2 and '--out must be a file name' in res.stderr, res.stderr


def test_mnist_bad_input(tmp_path, call):
    res = call('mnist', '--methods', 'gan', '--out', tmp_path)
    assert res.returncode == 2 and "unknown method 'gan'" in res.stderr, res.stderr
    res = call('mnist', '--nfe', '0', '--out', tmp_path)
    assert res.returncode == 2 and 'NFE values must be integers >= 1' in res.stderr, res.stderr
    res = call('mnist', '--teacher', tmp_path / 'missing.safetensors', '--out', tmp_path)
    assert res.returncode == 2 and 'no such file' in res.stderr, res.stderr
    from piflow_ref.dit import DiT, DiTConfig, save_dit                      # a DiT of another configuration
    save_dit(DiT(DiTConfig(input_size=32, patch_size=4, in_channels=4, hidden_size=32, depth=1, num_heads=2)), tmp_path / 'other.safetensors')
    res = call('mnist', '--teacher', tmp_path / 'other.safetensors', '--out', tmp_path / 'job')
    assert res.returncode == 2 and 'is not an MNIST teacher' in res.stderr, res.stderr
    res = call('mnist-teacher', '--config', 'DiT-XL/2', '--out', tmp_path / 't')
    assert res.returncode == 2 and 'unknown MNIST DiT config' in res.stderr, res.stderr


def test_mnist_small_run_with_workers(tmp_path, call):
    args = ('mnist', '--methods', 'piflow-gm', 'x0-regression', '--nfe', '1', '--iters', '2', '--per-class', '2',
            '--workers', '2', '--no-progress', '--out', str(tmp_path))
    res = run(*args)
    assert res.returncode == 0, res.stderr
    m = json.loads((tmp_path / 'metrics.json').read_text())
    assert m['dataset'] == 'mnist' and set(m['teacher']) >= {'steps', 'guidance', 'fd', 'precision', 'recall', 'class_accuracy'}
    assert [(r['method'], r['nfe']) for r in m['rows']] == [('teacher-euler', 1), ('piflow-gm', 1), ('x0-regression', 1)]
    for r in m['rows']:
        assert set(r) >= {'method', 'nfe', 'fd', 'fd_ratio', 'precision', 'recall', 'class_accuracy', 'alignment',
                          'teacher_calls', 'train_seconds', 'sample_seconds'} and r['fd'] > 0
    assert [r['iters'] for r in m['rows']] == [0, 2, 2] and m['rows'][1]['teacher_calls'] > 0
    for name in ('students/piflow-gm-1.safetensors', 'students/x0-regression-1.safetensors', 'reference.safetensors', 'samples.png'):
        assert (tmp_path / name).exists(), name
    again = run(*args)                                                              # reloaded, not retrained
    assert again.returncode == 0, again.stderr
    m2 = json.loads((tmp_path / 'metrics.json').read_text())
    for a, b in zip(m['rows'], m2['rows']):
        assert a['fd'] == b['fd'] and a['train_seconds'] == b['train_seconds'], (a, b)
    bad = call('mnist', '--workers', '0', '--out', tmp_path / 'w')
    assert bad.returncode == 2 and 'workers (--workers) must be an integer >= 1' in bad.stderr, bad.stderr


def test_distill_recipes_and_bad_input(tmp_path, call):
    res = run('distill', '--list')
    assert res.returncode == 0 and 'imagenet-gmdit-k32-1nfe' in res.stdout and 'tiny-gmdit-2nfe' in res.stdout, res.stderr
    res = call('distill', 'imagenet-gmrepa-k32-2nfe', '--print')
    v = json.loads(res.stdout)
    assert v['nfe'] == 2 and v['student']['K'] == 32 and v['train']['batch_size'] == 4096 and v['guidance']['scale'] == 2.8
    v = json.loads(call('distill', 'qwen-gm-k8-4nfe', '--print').stdout)                 # chapter 05's recipes are listed too
    assert v['guidance'] == {'scale': 4.0} and v['piid']['num_intermediate'] == 2 and v['model']['lora']['rank'] == 256
    assert v['train']['micro_batch'] == 2                                                # 2 per pass, as the official 32 GPUs
    for args, msg in ((('imagenet',), "unknown recipe 'imagenet'"), ((), 'name a recipe'),
                      (('tiny-gmdit-2nfe', '--steps', '0'), 'steps (--steps) must be >= 1'),
                      (('imagenet-gmdit-k32-1nfe',), 'pass --teacher FILE'),
                      (('flux-gm-k8-4nfe',), 'needs its base (flux:file): pass --teacher'),
                      (('qwen-gm-k8-4nfe', '--teacher', str(tmp_path / 'nowhere')), 'no such model folder'),
                      (('tiny-gmflux-4nfe', '--fsdp', '--steps', '0'), 'steps (--steps) must be >= 1'),
                      (('tiny-gmdit-2nfe', '--micro-batch', '-1'), 'micro_batch (--micro-batch) must be >= 0'),
                      (('tiny-gmdit-2nfe', '--micro-batch', '3'), 'the batch per process (8 / 1 = 8) must be a multiple of micro_batch 3')):
        res = call('distill', *args, '--out', tmp_path / 'x')
        assert res.returncode == 2 and msg in res.stderr, (args, res.stderr)
    res = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=3', '--no-python',
                          str(BIN / 'piflow-ref'), 'distill', 'tiny-gmdit-2nfe', '--out', str(tmp_path / 'three')],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode != 0 and 'batch_size 8 must be a multiple of the number of processes 3' in res.stderr, res.stderr[-2000:]
    assert not (tmp_path / 'three').exists()                                        # refused before any work


def test_distill_resumes_and_writes_the_student(tmp_path):
    res = run('distill', 'tiny-gmdit-2nfe', '--steps', '3', '--no-progress', '--out', str(tmp_path))
    assert res.returncode == 0, res.stderr
    rec = json.loads((tmp_path / 'distill.json').read_text())
    assert rec['iters'] == 3 and rec['world_size'] == 1 and rec['teacher_calls'] == 3 * 8 * 2
    res = run('distill', 'tiny-gmdit-2nfe', '--steps', '5', '--no-progress', '--out', str(tmp_path))   # resumed to 5
    assert res.returncode == 0, res.stderr
    log = [json.loads(l) for l in (tmp_path / 'log.jsonl').read_text().splitlines()]
    assert [r['step'] for r in log] == [3, 5] and log[-1]['teacher_calls'] == 5 * 8 * 2
    from piflow_ref.recipes import load_student
    st = load_student(tmp_path / 'student.safetensors')
    assert st.cfg.nfe == 2 and st.cfg.K == 4
    (tmp_path / 'train.safetensors').write_bytes(b'damaged')
    res = run('distill', 'tiny-gmdit-2nfe', '--steps', '5', '--no-progress', '--out', str(tmp_path))  # retrained, with a warning
    assert res.returncode == 0 and 'retraining' in res.stderr, res.stderr


def test_latents_and_evaluate_commands(tmp_path, call):
    import torch
    from diffusers import AutoencoderKL
    from PIL import Image
    from piflow_ref.recipes import load_latents
    for cls in range(2):                                          # an ImageNet-style folder of made-up images
        (tmp_path / 'images' / f'c{cls}').mkdir(parents=True)
        for j in range(3): Image.new('RGB', (40, 36), (80 * cls + 20 * j, 60, 200 - 50 * cls)).save(tmp_path / 'images' / f'c{cls}' / f'{j}.png')
    torch.manual_seed(0)
    AutoencoderKL(down_block_types=('DownEncoderBlock2D',) * 2, up_block_types=('UpDecoderBlock2D',) * 2, block_out_channels=(8, 16),
                  layers_per_block=1, latent_channels=4, norm_num_groups=4, sample_size=32).save_pretrained(tmp_path / 'vae')
    args = ('latents', str(tmp_path / 'images'), '--vae', str(tmp_path / 'vae'), '--size', '32', '--shard-size', '5', '--batch', '4', '--fp16')
    res = run(*args, '--out', str(tmp_path / 'lat'))
    assert res.returncode == 0, res.stderr
    rec = json.loads((tmp_path / 'lat' / 'latents.json').read_text())
    assert rec['rows'] == 12 and rec['classes'] == 2 and len(list((tmp_path / 'lat').glob('latents-*.safetensors'))) == 3
    data = load_latents(tmp_path / 'lat', 2)
    assert data.shape == (4, 16, 16) and data.x.dtype == torch.float16 and data.y.tolist() == [0] * 6 + [1] * 6
    again = call(*args, '--out', tmp_path / 'lat')
    assert again.returncode == 2 and 'already holds latent shards' in again.stderr, again.stderr
    for bad, msg in ((('latents', str(tmp_path / 'none')), 'no such image folder'),
                     (('latents', str(tmp_path / 'images'), '--vae', str(tmp_path / 'novae'), '--out', str(tmp_path / 'x')), 'no such VAE folder'),
                     (('evaluate', str(tmp_path), '--ref', str(tmp_path / 'ref.npz')), 'no such reference batch'),
                     (('evaluate', str(tmp_path), '--ref', str(tmp_path / 'ref.npz'), '--n', '1'), 'n (--n) must be >= 2')):
        res = call(*bad)
        assert res.returncode == 2 and msg in res.stderr, (bad, res.stderr)
    import numpy as np
    np.savez(tmp_path / 'ref.npz', arr_0=np.zeros((4, 32, 32, 3), np.uint8))
    res = call('evaluate', tmp_path, '--ref', tmp_path / 'ref.npz')
    assert res.returncode == 2 and 'holds no student.safetensors' in res.stderr, res.stderr


def test_distill_killed_and_resumed_equals_uninterrupted(tmp_path):
    import signal
    import time
    from piflow_ref.utils import load_tensors
    args = ('distill', 'tiny-gmdit-2nfe', '--steps', '160', '--no-progress')
    assert run(*args, '--out', str(tmp_path / 'straight')).returncode == 0
    proc = subprocess.Popen([str(BIN / 'piflow-ref'), *args, '--out', str(tmp_path / 'killed')], stderr=subprocess.PIPE)
    ckpt = tmp_path / 'killed' / 'train.safetensors'
    while not ckpt.exists() and proc.poll() is None: time.sleep(0.02)    # the first checkpoint: a quarter of the run
    proc.send_signal(signal.SIGKILL); proc.wait()
    assert proc.returncode == -signal.SIGKILL
    step = load_tensors(ckpt)[1]['step']
    assert 0 < step < 160, step                                           # killed mid-run, after a checkpoint
    res = run(*args, '--out', str(tmp_path / 'killed'))
    assert res.returncode == 0, res.stderr
    a, b = (load_tensors(tmp_path / d / 'student.safetensors')[0] for d in ('straight', 'killed'))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / 'killed' / 'distill.json').read_text())['iters'] == 160
