"""`robustclip eval --protocol` survives SIGKILL (a rerun reuses every finished shard and gives the uninterrupted result,
point by point), and two torchrun processes (gloo, CPU) split the shards and merge to the single-process result."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd

ARGS = ['eval', '--protocol', 'fare', '--model', 'offline-nano', '--dataset', 'fashion-mnist', '--n', '160', '--steps', '40',
        '--eps', '2/255', '--shard-size', '16', '--quiet']
MAIN = 'import json, sys; from robustclip_nb.cli import main; main(json.loads(open(sys.argv[1]).read()))'   # torchrun would parse --n itself

def _env():
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'HF_HUB_OFFLINE': '1'}
    for k in ('WORLD_SIZE', 'RANK', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'): env.pop(k, None)
    return env

def _eval(tmp, cache, out, nproc=1, extra=()):
    script, args = tmp/'rc.py', tmp/f'{Path(out).name}.args.json'
    script.write_text(MAIN); args.write_text(json.dumps([*ARGS, *extra, '--cache', str(cache), '--out', str(out)]))
    pre = [sys.executable] if nproc == 1 else [sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={nproc}']
    return pre + [str(script), str(args)]

def _shards(cache): return sorted(Path(cache).glob('*/shard-*.json'))

def test_sigkill_resume_and_rerun(tmp_path):
    ref = subprocess.run(_eval(tmp_path, tmp_path/'c0', tmp_path/'ref'), env=_env(), capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr
    assert 'offline-nano: 20 shard(s) computed, 0 reused' in ref.stdout       # 2 cells (clean, aa) x 10 shards
    p = subprocess.Popen(_eval(tmp_path, tmp_path/'c1', tmp_path/'run'), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t0 = time.time()
    while len(_shards(tmp_path/'c1')) < 12 and p.poll() is None and time.time() - t0 < 300: time.sleep(0.05)
    assert p.poll() is None, 'the evaluation finished before it could be killed: make it longer'
    p.send_signal(signal.SIGKILL); p.wait()
    done = {f: f.stat().st_mtime_ns for f in _shards(tmp_path/'c1')}
    assert 12 <= len(done) < 20 and not (tmp_path/'run'/'offline-nano'/'results.csv').exists()
    r = subprocess.run(_eval(tmp_path, tmp_path/'c1', tmp_path/'run'), env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert f'{20 - len(done)} shard(s) computed, {len(done)} reused' in r.stdout
    assert all(f.stat().st_mtime_ns == m for f, m in done.items())             # finished shards were not recomputed
    for f in ('results.csv', 'points.csv'):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path/'run'/'offline-nano'/f), pd.read_csv(tmp_path/'ref'/'offline-nano'/f))
    again = subprocess.run(_eval(tmp_path, tmp_path/'c1', tmp_path/'run'), env=_env(), capture_output=True, text=True, timeout=600)
    assert 'offline-nano: 0 shard(s) computed, 20 reused' in again.stdout      # a rerun computes nothing

def test_two_processes_merge_exactly(tmp_path):
    "Two models (the trained nano and its architecture with random weights) in one command: both processes go through both."
    import robustclip_nb
    extra = ['--model', str(Path(robustclip_nb.__file__).parent/'model_configs'/'robustclip-vit-nano.json')]
    one = subprocess.run(_eval(tmp_path, tmp_path/'c1', tmp_path/'one', extra=extra), env=_env(), capture_output=True, text=True, timeout=600)
    two = subprocess.run(_eval(tmp_path, tmp_path/'c2', tmp_path/'two', nproc=2, extra=extra), env=_env(), capture_output=True, text=True, timeout=600)
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-2000:]
    assert 'offline-nano: 10 shard(s) computed, 0 reused' in two.stdout        # process 0 reports its half; process 1 the other
    for m in ('offline-nano', 'robustclip-vit-nano'):
        a, b = (pd.read_csv(tmp_path/d/m/'points.csv') for d in ('one', 'two'))
        assert len(a) == 2 * 160
        pd.testing.assert_frame_equal(a, b)                                     # point by point
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path/'one'/m/'results.csv'), pd.read_csv(tmp_path/'two'/m/'results.csv'))
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path/'one'/'leaderboard.csv'), pd.read_csv(tmp_path/'two'/'leaderboard.csv'))

def test_cache_entry_of_another_version_is_refused(tmp_path, capsys):
    "A shard written by another package version: one line, exit 2, the entry and the output folder left as they were."
    import pytest
    from robustclip_nb.cli import main
    args = ['eval', '--protocol', 'fare', '--model', 'offline-nano', '--dataset', 'digits', '--n', '16', '--steps', '2', '--eps', '1/255',
            '--cache', str(tmp_path/'c'), '--quiet']
    main(args + ['--out', str(tmp_path/'a')])
    f = sorted((tmp_path/'c').glob('*/shard-*.json'))[0]
    e = json.loads(f.read_text()); e['version'] = '0.0.1'; f.write_text(json.dumps(e)); stale = f.read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit) as x: main(args + ['--out', str(tmp_path/'b')])
    err = capsys.readouterr().err
    assert x.value.code == 2 and len(err.strip().splitlines()) == 1 and 'written by robustclip_nb 0.0.1' in err, err
    assert f.read_text() == stale and not (tmp_path/'b').exists()
