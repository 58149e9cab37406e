"""Shared test set-up: test mode, one torch thread (two were erratic for small models here), a headless plot backend."""
import os

os.environ['IN_TEST'] = '1'
os.environ.setdefault('MPLBACKEND', 'Agg')

import torch  # noqa: E402

torch.set_num_threads(1)
