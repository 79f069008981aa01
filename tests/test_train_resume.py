"""Kill-and-resume: a training process killed with SIGKILL resumes from its last checkpoint and ends
bit-for-bit equal to an uninterrupted run, with each step logged exactly once."""
import json, os, signal, subprocess, sys, time, textwrap
from pathlib import Path
import torch
from safetensors.torch import load_file

JOB = textwrap.dedent('''
    import sys, time, torch, torch.nn as nn
    from robustclip_nb.train import TrainConfig, fit
    out, slow = sys.argv[1], float(sys.argv[2])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Dropout(0.1), nn.Linear(16, 1))   # dropout: RNG state matters
    g = torch.Generator().manual_seed(1)
    X = torch.randn(256, 8, generator=g); Y = X.sum(1, keepdim=True).sin()
    ds = torch.utils.data.TensorDataset(X, Y)
    def loss(m, b):
        if slow: time.sleep(slow)
        return ((m(b[0]) - b[1]) ** 2).mean()
    cfg = TrainConfig(steps=40, lr=1e-2, warmup_steps=4, ckpt_every=3, seed=0)
    fit(model, loss, ds, cfg, out, batch_size=32, progress=False)
''')

def _start(out, slow):
    env = {**os.environ, 'PYTHONHASHSEED': '0', 'OMP_NUM_THREADS': '1'}
    return subprocess.Popen([sys.executable, '-c', JOB, str(out), str(slow)], env=env)

def _final(out):
    ck = sorted((Path(out) / 'checkpoints').glob('step_*'))[-1]
    return ck.name, load_file(ck / 'model.safetensors')

def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    ref, run = tmp_path / 'ref', tmp_path / 'run'
    assert _start(ref, 0).wait(timeout=120) == 0
    p = _start(run, 0.05)
    deadline = time.time() + 120
    while time.time() < deadline:
        cks = list((run / 'checkpoints').glob('step_*'))
        if any(int(c.name.split('_')[1]) >= 12 for c in cks): break
        time.sleep(0.02)
    time.sleep(0.07)                     # land somewhere inside a later step, possibly mid-checkpoint
    p.send_signal(signal.SIGKILL); p.wait()
    assert p.returncode == -signal.SIGKILL
    killed_at = max(int(c.name.split('_')[1]) for c in (run / 'checkpoints').glob('step_*'))
    assert 12 <= killed_at < 40, killed_at
    assert _start(run, 0).wait(timeout=120) == 0
    (n1, a), (n2, b) = _final(ref), _final(run)
    assert n1 == n2 == 'step_0000040'
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(l)['step'] for l in (run / 'metrics.jsonl').read_text().splitlines()]
    assert steps == list(range(1, 41))
    losses = lambda d: [json.loads(l)['loss'] for l in (d / 'metrics.jsonl').read_text().splitlines()]
    assert losses(ref) == losses(run)
