"""Chapter 05's students through chapter 03's trainer in 2 gloo processes: FSDP2 (and DDP) train as one process does
with the same passes (within float rounding), an FSDP2 run resumes exactly, and checkpoints hold the trainable
parameters only."""
from pathlib import Path

import pytest
import torch

from piflow_ref.piid import DistillConfig
from piflow_ref.recipes import get_recipe
from piflow_ref.t2i import t2i_setup
from piflow_ref.utils import load_tensors
from test_distributed import torchrun as _torchrun

SCRIPT = Path(__file__).with_name('t2i_run.py')


def torchrun(*args):
    return _torchrun(2, *args, script=SCRIPT)


def one_process(name, iters, ckpt):
    "The recipe in this process, each iteration's batch in passes of 2 rows: the passes the 2 processes make."
    torch.set_num_threads(1)
    make, _ = t2i_setup(get_recipe(name), train={'iters': iters, 'micro_batch': 2})
    return make().run(ckpt=ckpt, progress=False)


def compare(a_path, b_path, tol):
    a, ma = load_tensors(a_path)
    b, mb = load_tensors(b_path)
    assert sorted(a) == sorted(b)
    assert max(abs(x - y) for x, y in zip(ma['losses'], mb['losses'])) <= tol * max(map(abs, ma['losses']))
    for k in a:
        if k == 'rng': continue
        scale = max(a[k].abs().max().item(), 1e-12)
        assert (a[k] - b[k]).abs().max().item() <= tol * scale, (k, (a[k] - b[k]).abs().max().item(), scale)


@pytest.mark.parametrize('name,fsdp', [('tiny-gmflux-4nfe', 1), ('tiny-gmqwen-4nfe', 1), ('tiny-gmflux-4nfe', 0)])
def test_two_processes_equal_one(tmp_path, name, fsdp):
    one_process(name, 2, tmp_path / 'one.safetensors')
    torchrun(name, fsdp, 2, tmp_path / 'two.safetensors', 0)
    compare(tmp_path / 'one.safetensors', tmp_path / 'two.safetensors', 1e-5)   # weights, EMA, gradient moments


def test_fsdp_resumes_exactly_and_saves_trainable_only(tmp_path):
    """An FSDP2 run resumed under FSDP2 is the uninterrupted run, bit for bit; its checkpoint, read under DDP and written
    again, is the same file (so DDP resumes from it exactly where it stopped). (Training on under DDP is not compared
    with training on under FSDP2 beyond a few iterations: any change in how sums are split drifts the log-std head's
    near-zero gradients apart through Adam's normalisation, by 3e-2 relative after 6 iterations between micro-batches
    of 2 and 4 in one process.)"""
    torchrun('tiny-gmflux-4nfe', 1, 4, tmp_path / 'straight.safetensors', 0)
    torchrun('tiny-gmflux-4nfe', 1, 2, tmp_path / 'resumed.safetensors', 0)      # interrupted after 2 iterations ...
    two = tmp_path / 'two.safetensors'
    two.write_bytes((tmp_path / 'resumed.safetensors').read_bytes())
    torchrun('tiny-gmflux-4nfe', 0, 2, two, 1)          # (read under DDP and written again: whole tensors, the same file)
    compare(tmp_path / 'resumed.safetensors', two, 0.0)
    torchrun('tiny-gmflux-4nfe', 1, 4, tmp_path / 'resumed.safetensors', 1)      # ... and resumed to 4
    compare(tmp_path / 'straight.safetensors', tmp_path / 'resumed.safetensors', 0.0)
    tensors, _ = load_tensors(tmp_path / 'straight.safetensors')
    d = t2i_setup(get_recipe('tiny-gmflux-4nfe'))[0]()
    trainable = {n for n, p in d.student.named_parameters() if p.requires_grad}
    assert {k[len('student.'):] for k in tensors if k.startswith('student.')} == trainable
    assert {k[len('ema.'):] for k in tensors if k.startswith('ema.')} == trainable
    assert all(('lora_' in n) or not n.startswith('teacher.') for n in trainable)


def test_fsdp_retrains_a_damaged_checkpoint(tmp_path):
    "`piflow-ref distill --fsdp` over a damaged checkpoint: a warning, a fresh base (not the sharded one), the run."
    (tmp_path / 'train.safetensors').write_bytes(b'damaged')
    res = torchrun('cli', 'distill', 'tiny-gmflux-4nfe', '--steps', 1, '--fsdp', '--no-progress', '--out', tmp_path)
    assert 'retraining' in res.stderr, res.stderr[-2000:]
    assert (tmp_path / 'adapter.safetensors').is_file()


def test_fsdp_refuses_8bit_adamw():
    with pytest.raises(ValueError, match="8-bit AdamW does not take FSDP2's sharded parameters"):
        DistillConfig(fsdp=True, optimizer='adamw8bit')


def test_a_loaded_bf16_base_trains_fp32_parts(tmp_path):
    """A base saved by diffusers and loaded as the full-size recipes load theirs (bf16, from a pipeline's `transformer`
    folder) stays bf16 and frozen; LoRA, heads and norm_out are fp32 and train under bf16 autocast."""
    from piflow_ref.recipes import Recipe
    from piflow_ref.t2i import T2I_RECIPES, tiny_base
    tiny_base('flux').save_pretrained(tmp_path / 'pipe' / 'transformer')
    r = T2I_RECIPES['tiny-gmflux-4nfe']
    recipe = Recipe('flux:file', 'random', nfe=r.nfe, student=r.student, piid=r.piid, guidance=r.guidance, model=r.model,
                    train=r.train | {'iters': 1, 'precision': 'bf16'})
    d = t2i_setup(recipe, teacher=tmp_path / 'pipe')[0]()
    dtypes = {(p.requires_grad, p.dtype) for p in d.student.parameters()}
    assert dtypes == {(False, torch.bfloat16), (True, torch.float32)}, dtypes
    before = {n: p.detach().clone() for n, p in d.student.named_parameters()}
    d.run(progress=False)
    assert all(torch.equal(p, before[n]) for n, p in d.student.named_parameters() if not p.requires_grad)
    assert not torch.equal(d.student.head.weight, before['head.weight'])
    with pytest.raises(ValueError, match='no such model folder'):
        t2i_setup(recipe, teacher=tmp_path / 'nowhere')
