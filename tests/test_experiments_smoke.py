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
        assert 'results.csv' in files and 'results.provenance.json' in files and any(f.endswith('.png') for f in files), (n, files)
        assert any(f.endswith('.pdf') for f in files) and any(f.endswith('.md') for f in files), (n, files)
        prov = json.loads((tmp_path / 'figs' / n / 'results.provenance.json').read_text())
        assert prov['params']['model'] == 'offline-nano' and 'wall_seconds' in prov
    assert not list(nbs.glob('*.ipynb.*')) and (tmp_path / 'runs' / 'smoke' / names[0] / f'{names[0]}.ipynb').exists()
