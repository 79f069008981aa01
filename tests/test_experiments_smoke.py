"""Every experiment notebook runs end to end under the `smoke` profile (papermill, offline-nano), through the same
runner as `robustclip run`, and writes its table, figures and provenance."""
import json
from pathlib import Path
from robustclip_nb.runner import run_experiments, load_profile, experiments_dir

def test_smoke_profile_runs_every_experiment(tmp_path):
    nbs = Path(__file__).parent.parent / 'nbs' / 'experiments'
    names = sorted(p.stem for p in nbs.glob('*.ipynb'))
    assert sorted(load_profile('smoke')['experiments']) == names, 'the smoke profile must cover every experiment notebook'
    st = run_experiments('smoke', out=tmp_path / 'runs', figures_dir=tmp_path / 'figs', nbs_dir=nbs, progress=False)
    assert st.status.tolist() == ['ok'] * len(names), st.to_string()
    for n in names:
        files = {p.name for p in (tmp_path / 'figs' / n).iterdir()}
        assert {'results.csv', 'results.provenance.json', 'claims.md'} <= files, (n, files)   # every notebook ends with its claims table
        for ext in ('.png', '.pdf', '.md'): assert any(f.endswith(ext) for f in files), (n, ext, files)
        prov = json.loads((tmp_path / 'figs' / n / 'results.provenance.json').read_text())
        assert prov['params']['model'] == 'offline-nano', prov['params']
        assert 'wall_seconds' in prov
    assert not list(nbs.glob('*.ipynb.*')), 'executed copies must not land beside the sources'
    assert (tmp_path / 'runs' / 'smoke' / names[0] / f'{names[0]}.ipynb').exists()
    check_contents(tmp_path / 'figs')

def check_contents(figs):
    "What each experiment's tidy results must contain (the smoke profile's settings)."
    import pandas as pd
    ft = pd.read_csv(figs / 'fare_tecoa' / 'results.csv')
    runs = set(ft.method) - {'offline-nano'}
    assert 'offline-nano' in set(ft.method)
    assert {m.split(' ')[0] for m in runs} == {'tecoa', 'fare'}     # run labels: name, eps, then what differs from the defaults
    assert all(m.split(' ')[1] == 'eps=4/255' for m in runs)
    assert set(ft.attack) == {'none', 'pgd'}
    ap = pd.read_csv(figs / 'advpt' / 'results.csv')
    for m in ('clean-pt', 'advpt'):   # learned prompts are scored both ways, per dataset
        assert set(ap[ap.method == m].attack) == {'none', 'pgd', 'pgd-transfer'} and set(ap[ap.method == m].dataset) == {'digits', 'gcompris-categories'}
    syn = pd.read_csv(figs / 'advpt' / 'synergy.csv')
    assert set(syn.defence) == {'none', 'bitdepth:4', 'jpeg:75'} and set(syn.attack) == {'none', 'pgd-bpda', 'pgd-transfer'}
    mm = pd.read_csv(figs / 'mmcoa' / 'results.csv')
    main = mm[mm.sweep.isna()]
    assert 'vanilla' in set(main.method) and main.method.nunique() == 4   # the base model and the three modes, each under its own run label
    assert (main.groupby(['method', 'dataset']).threat.apply(set) == {'clean', 'image', 'text', 'multimodal'}).all()
    assert sorted(mm[mm.sweep.notna()].n_classes.unique()) == [2, 10]
    al = pd.read_csv(figs / 'advlora' / 'results.csv')
    assert set(al.group) == {'adaptation', 'rank', 'eps', 'variant'}
    ret = al[al.metric.str.contains('@')]
    assert {f'{d}_R@{k}' for d in ('i2t', 't2i') for k in (1, 5, 10)} == set(ret.metric) and set(ret.attack) == {'none', 'pgd'}
    p = al.groupby('label').trainable_params.first()
    assert p['LoRA (adversarial)'] < p['full FT (adversarial)'] and p['AdvLoRA r=1'] < p['AdvLoRA r=2'] and p['vanilla'] == 0
    assert ((al.value >= 0) & (al.value <= 1)).all()
