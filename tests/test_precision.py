"""What the ImageNet recipes switch on for GPUs, checked on the tiny recipe on CPU: activation checkpointing gives the
same run, bf16 autocast keeps fp32 weights and policy math, and 8-bit AdamW (bitsandbytes) resumes exactly."""
import pytest
import torch

from piflow_ref.dit import make_dit_distiller
from piflow_ref.guidance import GuidedTeacher
from piflow_ref.piid import DistillConfig, Distiller, PiIDConfig, StudentConfig
from piflow_ref.recipes import get_recipe, recipe_data, recipe_teacher
from piflow_ref.toy import Checkerboard, MLPConfig, MLPStudent, MLPVelocity

torch.set_num_threads(1)


def tiny(**train) -> Distiller:
    r = get_recipe('tiny-gmdit-2nfe')
    net = recipe_teacher(r)
    torch.manual_seed(0)
    return make_dit_distiller(r.method, r.nfe, net, GuidedTeacher(net, net.cfg.num_classes, **r.guidance), recipe_data(r, net),
                              r.student, r.piid, r.train | train)


def weights(d: Distiller) -> dict:
    return {f'{n}.{k}': v.clone() for n in ('student', 'ema') for k, v in getattr(d, n).state_dict().items()}


def test_checkpointing_gives_the_same_run():
    a, b = tiny(), tiny(checkpointing=True)
    calls = {}
    for name, d in (('plain', a), ('checkpointed', b)):
        count = lambda m, i, name=name: calls.__setitem__(name, calls.get(name, 0) + 1)
        hooks = [blk.register_forward_pre_hook(count) for blk in d.student.net.blocks]   # (a recompute may stop early)
        d.run(progress=False)
        for h in hooks: h.remove()
    assert calls['checkpointed'] == 2 * calls['plain'] > 0       # each block runs again in the backward pass
    assert a.losses == b.losses
    wa, wb = weights(a), weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a.identity() == b.identity()                     # a run may be resumed with or without it


def test_checkpointing_needs_a_student_that_supports_it():
    teacher = MLPVelocity(MLPConfig(hidden=32, depth=2))
    with pytest.raises(ValueError, match='checkpointing needs a student with set_checkpointing'):
        Distiller(MLPStudent(StudentConfig(K=4), teacher), teacher, Checkerboard(), PiIDConfig(), DistillConfig(checkpointing=True))


def test_bf16_networks_fp32_weights():
    d = tiny(precision='bf16')
    seen = {'student': [], 'teacher': []}
    hooks = [d.student.net.blocks[0].ff.fc1.register_forward_hook(lambda m, i, o: seen['student'].append(o.dtype)),
             d.teacher.teacher.blocks[0].ff.fc1.register_forward_hook(lambda m, i, o: seen['teacher'].append(o.dtype))]
    d.run(progress=False)
    for h in hooks: h.remove()
    assert set(seen['student']) == set(seen['teacher']) == {torch.bfloat16}      # both networks ran in bf16
    assert all(p.dtype == torch.float32 for m in (d.student, d.ema) for p in m.parameters())   # fp32 master weights
    fp32 = tiny().run(progress=False)
    rel = max(abs(a - b) / abs(b) for a, b in zip(d.losses, fp32.losses))
    print(f'largest relative loss difference bf16 vs fp32: {rel:.2e}')
    assert 0 < rel < 0.05, rel                               # bf16 rounding, not another run


def test_checkpoints_older_than_the_new_fields_load(tmp_path):
    from piflow_ref.utils import load_tensors, save_tensors
    d = tiny().run(until=2, progress=False, ckpt=tmp_path / 'c.safetensors')
    tensors, meta = load_tensors(tmp_path / 'c.safetensors')
    for k in ('precision', 'optimizer'): del meta['train'][k]          # as written before these fields existed
    del meta['net']['mlp_norm_eps']
    save_tensors(tensors, tmp_path / 'old.safetensors', meta)
    assert tiny().load(tmp_path / 'old.safetensors').step == 2
    with pytest.raises(ValueError, match='differs in: train.precision'): tiny(precision='bf16').load(tmp_path / 'old.safetensors')


def test_adamw8bit_states_and_exact_resume(tmp_path):
    straight = tiny(optimizer='adamw8bit').run(progress=False)
    dtypes = {v.dtype for st in straight.opt.state.values() for v in st.values() if torch.is_tensor(v)}
    assert torch.uint8 in dtypes                             # 8-bit moments (bitsandbytes keeps tensors < 4096 in fp32)
    half = tiny(optimizer='adamw8bit').run(until=3, progress=False, ckpt=tmp_path / 'c.safetensors')
    resumed = tiny(optimizer='adamw8bit').load(tmp_path / 'c.safetensors').run(progress=False)
    assert half.step == 3 and resumed.losses == straight.losses
    ws, wr = weights(straight), weights(resumed)
    assert all(torch.equal(ws[k], wr[k]) for k in ws)
    with pytest.raises(ValueError, match='differs in: train.optimizer'):
        tiny().load(tmp_path / 'c.safetensors')


def test_bad_precision_and_optimizer():
    with pytest.raises(ValueError, match="precision must be 'fp32' or 'bf16'"): DistillConfig(precision='fp16')
    with pytest.raises(ValueError, match="optimizer must be 'adamw' or 'adamw8bit'"): DistillConfig(optimizer='sgd')
