"""The shipped profiles name only things that exist: every key is a declared notebook parameter, every dataset is in the
registry, every model is known, every method and hyper-parameter is accepted, every eps parses. (The `paper` profile
cannot run here - no GPU, no internet - so this is what can be checked of it offline.)"""
import pytest, functools
from pathlib import Path
from robustclip_nb.runner import load_profile, notebook_parameters, list_profiles
from robustclip_nb.data import DATASETS
from robustclip_nb.zoo import list_models
from robustclip_nb.core import parse_eps
from robustclip_nb.methods import get_method

NBS = Path(__file__).parent.parent / 'nbs' / 'experiments'
DATASET_KEYS = ('train_dataset', 'eval_dataset', 'retrieval_dataset', 'synergy_dataset', 'class_sweep_dataset')
DATASET_LISTS = ('datasets', 'eval_datasets')
EPS_KEYS = ('train_eps', 'bank_eps', 'synergy_eps')
EPS_LISTS = ('eval_eps', 'sweep_eps', 'sensitivity_eval_eps')

declared = functools.lru_cache(notebook_parameters)   # papermill parses each notebook once
model_names = functools.lru_cache(lambda: set(list_models()))

def method_checks(name, p):
    "Build every method the experiment would train with the profile's hyper-parameters (raises on a bad one)."
    if name == 'fare_tecoa':
        for m in p.get('methods', ['tecoa', 'fare']): get_method(m, **p.get('hparams', {}))
    elif name == 'advpt':
        ms = p.get('methods', ['clean-pt', 'advpt'])
        known = {k for m in ms for k in get_method(m).hparams}
        assert set(p.get('hparams', {})) <= known, p.get('hparams')
    elif name == 'mmcoa':
        for mode in p.get('modes', ['image', 'text', 'multimodal']): get_method('mmcoa', **{**p.get('hparams', {}), 'mode': mode})
    elif name == 'advlora':
        for clean, adv in p.get('adaptations', {}).values(): get_method(clean), get_method(adv)
        for hp in p.get('variants', {}).values(): get_method('advlora', **{**p.get('lora_hparams', {}), **hp})
        for r in p.get('ranks', []): get_method('advlora', **{**p.get('lora_hparams', {}), 'rank': r})
        assert set(p.get('method_steps', {})) <= {'clean-ft', 'tecoa', 'clean-lora', 'advlora', 'clean-pt', 'advpt'}
    else: raise AssertionError(f'no checks written for experiment {name}')

@pytest.mark.parametrize('profile', ['smoke', 'quick', 'paper'])
def test_profile_names_only_what_exists(profile):
    assert profile in list_profiles()
    prof = load_profile(profile)
    models = model_names()
    for name, exp in prof['experiments'].items():
        p = {**prof['defaults'], **exp}
        assert set(p) <= set(declared(NBS / f'{name}.ipynb')), (name, set(p) - set(declared(NBS / f'{name}.ipynb')))
        assert p['model'] in models or p['model'].startswith('offline-'), p['model']
        for k in DATASET_KEYS:
            if k in p: assert p[k] in DATASETS, (name, k, p[k])
        for k in DATASET_LISTS:
            for d in p.get(k, []): assert d in DATASETS, (name, k, d)
        for k in EPS_KEYS + EPS_LISTS:   # a single eps or a list of them
            v = p.get(k, [])
            for e in ([v] if isinstance(v, str) else v): assert parse_eps(e) > 0, (name, k, e)
        method_checks(name, p)

def test_bad_profile_values_are_caught():
    "The checks above can fail: a misspelt dataset and an unknown hyper-parameter are rejected."
    with pytest.raises(Exception): method_checks('mmcoa', {'hparams': {'atack_steps': 3}})
    assert 'fashion-mnis' not in DATASETS
