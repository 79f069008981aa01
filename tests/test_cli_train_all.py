"""Every registered method (the five defences and the clean baselines) trains from the shell on the tiny offline-nano
model and leaves a finished run directory that `load_trained` rebuilds."""
import json
import pytest, torch
from robustclip_nb.cli import main
from robustclip_nb.methods import METHODS, import_methods, load_trained

import_methods()
EXPECTED = {'tecoa', 'clean-ft', 'fare', 'advpt', 'clean-pt', 'mmcoa', 'advlora', 'clean-lora'}

def test_every_method_is_registered():
    assert EXPECTED <= set(METHODS)

@pytest.mark.parametrize('method', sorted(EXPECTED))
def test_train_from_cli(method, tmp_path, capsys):
    eps = '1/255' if method == 'mmcoa' else '4/255'
    main(['train', method, '--model', 'offline-nano', '--dataset', 'digits', '--eps', eps, '--steps', '2',
          '--n-train', '32', '--batch-size', '8', '--out', str(tmp_path), '--quiet'])
    info = json.loads(capsys.readouterr().out.splitlines()[0])
    assert info['method'] == method and info['steps'] == 2 and 0 < info['trainable_params'] <= info['total_params']
    assert (tmp_path / 'weights.safetensors').exists() and (tmp_path / 'method.json').exists()
    tm = load_trained(tmp_path)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        clf = tm.method.classifier(tm.module, type('DS', (), {'classnames': ['zero', 'one'], 'templates': ['a photo of a {c}.']})())
        assert clf(x).shape == (2, 2)
