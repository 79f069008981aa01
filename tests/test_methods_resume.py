"""`robustclip train` killed with SIGKILL mid-run resumes from its last checkpoint and ends bit-identical to an
uninterrupted run (a method with an attack inside its loss, so the per-step attack seeds must be restored too)."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import torch
from safetensors.torch import load_file

STEPS = 60

def _train(out):
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'ROBUSTCLIP_THREADS': '1', 'HF_HUB_OFFLINE': '1'}
    cmd = [sys.executable, '-c', 'from robustclip_nb.cli import main; main()', 'train', 'tecoa', '--model', 'offline-nano', '--dataset', 'digits',
           '--eps', '2/255', '--steps', str(STEPS), '--ckpt-every', '2', '--n-train', '64', '--batch-size', '16',
           '--set', 'attack_steps=2', '--out', str(out), '--quiet']
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)

def test_cli_train_sigkill_resume(tmp_path):
    ref, run = tmp_path / 'ref', tmp_path / 'run'
    assert _train(ref).wait(timeout=600) == 0
    p = _train(run)
    deadline = time.time() + 600
    while time.time() < deadline and p.poll() is None:
        cks = list((run / 'checkpoints').glob('step_*'))
        if any(int(c.name.split('_')[1]) >= 6 for c in cks): break
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL); p.wait()
    assert p.returncode == -signal.SIGKILL, 'the run finished before it could be killed'
    killed_at = max(int(c.name.split('_')[1]) for c in (run / 'checkpoints').glob('step_*'))
    assert 6 <= killed_at < STEPS and not (run / 'weights.safetensors').exists()
    assert _train(run).wait(timeout=600) == 0
    a, b = load_file(ref / 'weights.safetensors'), load_file(run / 'weights.safetensors')
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(l)['step'] for l in (run / 'metrics.jsonl').read_text().splitlines()]
    assert steps == list(range(1, STEPS + 1))
    info = json.loads((run / 'method.json').read_text())
    assert info['resumed_from'] >= 6 and info['label'] == 'tecoa eps=2/255 attack_steps=2 steps=60 batch_size=16'
