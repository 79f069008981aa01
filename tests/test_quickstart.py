"The README's quick start runs as written (on the cheap offline-nano model instead of offline-base, few images)."
import os, re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def quick_start() -> str:
    readme = (ROOT/'README.md').read_text()
    section = readme.split('## Quick start', 1)[1]
    return re.search(r'```python\n(.*?)```', section, re.S).group(1)

def test_quick_start_is_short():
    lines = [l for l in quick_start().splitlines() if l.strip()]
    assert len(lines) <= 10, lines
    assert "load_model('offline-base')" in quick_start()

def test_quick_start_runs(tmp_path):
    code = quick_start().replace("'offline-base'", "'offline-nano'").replace('n=100', 'n=20')
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS', '1')}
    r = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [l for l in r.stdout.splitlines() if l.startswith('|')]
    assert 'none' in rows[0] and 'pgd' in rows[0]               # the header: clean and attacked columns
    assert {'fashion-mnist', 'digits'} <= {d for l in rows[2:] for d in ('fashion-mnist', 'digits') if d in l}
    for l in rows[2:]:
        clean, pgd = (float(v) for v in l.strip('|').split('|')[1:3])
        assert 0 <= pgd <= clean <= 1                         # the attack never helps
