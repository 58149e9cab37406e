"""Checkpoints: an interrupted π-ID run resumes with exactly the losses of an uninterrupted one (with data and
data-free), files are replaced atomically, and a checkpoint of another configuration is refused."""
import pytest
import torch

from piflow_ref.piid import DistillConfig, Distiller, PiIDConfig, StudentConfig
from piflow_ref.guidance import GuidedTeacher, LabelledMixture
from piflow_ref.toy import Checkerboard, MLPConfig, MLPStudent, MLPVelocity, ring_gaussians


def make(kind='gm', data_free=False, K=4, seed=0, conditional=False):
    torch.manual_seed(123)                         # the same teacher every time
    teacher = MLPVelocity(MLPConfig(hidden=32, depth=2)).requires_grad_(False)
    student = MLPStudent(StudentConfig(kind=kind, K=K, nfe=2, num_classes=4 if conditional else 0), teacher)
    data = Checkerboard()
    if conditional:                                # a guided exact teacher on labelled data
        data = LabelledMixture(ring_gaussians(), torch.arange(8) // 2)
        teacher = GuidedTeacher(data, data.null_label, scale=2.7, interval=(0.0, 0.6))
    return Distiller(student, teacher, data,
                     PiIDConfig(gm_dropout=0.2, window_substeps=3),
                     DistillConfig(iters=8, batch_size=32, warmup=3, clip_begin=2, ema_start=2, data_free=data_free, seed=seed))


@pytest.mark.parametrize('kind,data_free,conditional', [('gm', False, False), ('gm', True, False), ('dx', False, False),
                                                        ('x0', False, False), ('gm', False, True), ('gm', True, True)])
def test_resume_is_exact(tmp_path, kind, data_free, conditional):
    straight = make(kind, data_free, conditional=conditional).run(progress=False)
    ckpt = tmp_path / 'ckpt.safetensors'
    make(kind, data_free, conditional=conditional).run(until=5, ckpt=ckpt, progress=False)
    resumed = make(kind, data_free, conditional=conditional).load(ckpt)
    assert resumed.step == 5
    before = resumed.seconds                       # the training time up to the interruption is kept ...
    assert before > 0
    resumed.run(progress=False)
    assert resumed.seconds > before                # ... and the rest is added to it
    assert resumed.losses == straight.losses and resumed.teacher_calls == straight.teacher_calls > 0
    for a, b in zip(resumed.student.state_dict().values(), straight.student.state_dict().values()): assert torch.equal(a, b)
    for a, b in zip(resumed.ema.state_dict().values(), straight.ema.state_dict().values()): assert torch.equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ['ckpt.safetensors']        # no temporary files left behind


def test_other_config_is_refused(tmp_path):
    ckpt = tmp_path / 'ckpt.safetensors'
    make().run(until=2, ckpt=ckpt, progress=False)
    with pytest.raises(ValueError, match='student.K'):
        make(K=8).load(ckpt)
    with pytest.raises(ValueError, match='train.seed'):
        make(seed=1).load(ckpt)
    with pytest.raises(ValueError, match='student.num_classes'):
        make(conditional=True).load(ckpt)


def test_nan_steps_are_skipped():
    d = make()
    d.teacher = lambda x, s: torch.full_like(x, float('nan'))
    before = [p.clone() for p in d.student.parameters()]
    d.run(until=2, progress=False)
    assert d.skipped == 2
    assert all(torch.equal(a, b) for a, b in zip(before, d.student.parameters()))
