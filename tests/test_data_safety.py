"Safety and error contract of robustclip_nb.data and its appendices (sources, paper_data): safe CIFAR unpickling, argument checks, one-line DataErrors, availability"
import gzip, io, os, pickle, struct
from pathlib import Path
import numpy as np, pytest
from PIL import Image
from robustclip_nb.core import RobustCLIPError
import robustclip_nb.data as data
import robustclip_nb.sources as sources
import robustclip_nb.paper_data as paper_data
from robustclip_nb.data import (DATASETS, ClassificationSet, DataError, LazyImages, SourceNotFound, list_datasets,
                                load_dataset, open_image)
from robustclip_nb.paper_data import CIFAR10_CLASSES, CIFAR100_CLASSES, read_cifar

os.environ.setdefault('HF_HUB_OFFLINE', '1')


# ---------------------------------------------------------------- fixtures: CIFAR folders in the python-pickle format

def write_cifar10(root, n_test=4, per_batch=2, seed=0, protocol=pickle.DEFAULT_PROTOCOL):
    "cifar-10-batches-py with bytes keys (b'data', b'labels', b'label_names'); returns (folder, test dict)"
    rng, d = np.random.default_rng(seed), Path(root) / 'cifar-10-batches-py'; d.mkdir(parents=True, exist_ok=True)
    test = None
    for fn, n in [(f'data_batch_{i}', per_batch) for i in range(1, 6)] + [('test_batch', n_test)]:
        e = {b'batch_label': fn.encode(), b'labels': rng.integers(0, 10, n).tolist(),
             b'data': rng.integers(0, 256, (n, 3072), dtype=np.uint8), b'filenames': [f'{fn}_{i}.png'.encode() for i in range(n)]}
        (d / fn).write_bytes(pickle.dumps(e, protocol=protocol))
        if fn == 'test_batch': test = e
    (d / 'batches.meta').write_bytes(pickle.dumps({b'label_names': [c.encode() for c in CIFAR10_CLASSES],
                                                   b'num_cases_per_batch': per_batch}, protocol=protocol))
    return d, test


def write_cifar100(root, n_test=5, n_train=7, seed=1):
    "cifar-100-python with bytes keys (b'fine_labels', b'coarse_labels', meta b'fine_label_names'); returns (folder, test dict)"
    rng, d = np.random.default_rng(seed), Path(root) / 'cifar-100-python'; d.mkdir(parents=True, exist_ok=True)
    out = {}
    for fn, n in (('train', n_train), ('test', n_test)):
        out[fn] = {b'filenames': [b'x.png'] * n, b'fine_labels': rng.integers(0, 100, n).tolist(),
                   b'coarse_labels': rng.integers(0, 20, n).tolist(), b'data': rng.integers(0, 256, (n, 3072), dtype=np.uint8)}
        (d / fn).write_bytes(pickle.dumps(out[fn]))
    (d / 'meta').write_bytes(pickle.dumps({b'fine_label_names': [c.replace(' ', '_').encode() for c in CIFAR100_CLASSES],
                                           b'coarse_label_names': [b'aquatic_mammals']}))
    return d, out['test']


def hwc(data_rows):
    return np.asarray(data_rows).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


class Evil:
    "Unpickling it runs a shell command"
    def __init__(self, cmd): self.cmd = cmd
    def __reduce__(self): return (os.system, (self.cmd,))


class Py2Pickler(pickle._Pickler):
    "Pickles like Python 2 with numpy 1 wrote the original CIFAR files: 8-bit BINSTRINGs, numpy.core names"
    dispatch = dict(pickle._Pickler.dispatch)
    def save_str8(self, obj):
        b = obj if isinstance(obj, bytes) else obj.encode('latin1')
        self.write(pickle.SHORT_BINSTRING + bytes([len(b)]) + b if len(b) < 256 else pickle.BINSTRING + struct.pack('<i', len(b)) + b)
        self.memoize(obj)
    dispatch[bytes] = dispatch[str] = save_str8
    def save_global(self, obj, name=None):
        mod = 'numpy.core.multiarray' if obj.__name__ == '_reconstruct' else obj.__module__
        self.write(pickle.GLOBAL + f'{mod}\n{obj.__name__}\n'.encode()); self.memoize(obj)


# ---------------------------------------------------------------- safe CIFAR

@pytest.mark.parametrize('protocol', [0, 2, 4, 5])
def test_malicious_cifar_pickle_is_refused_and_never_runs(tmp_path, protocol):
    d, _ = write_cifar10(tmp_path)
    marker = tmp_path / 'pwned'
    (d / 'test_batch').write_bytes(pickle.dumps({'data': Evil(f'touch {marker}'), 'labels': [0]}, protocol=protocol))
    with pytest.raises(DataError) as ei:
        load_dataset('cifar10', split='test', root=tmp_path)
    assert not marker.exists()
    msg = str(ei.value)
    assert f"refusing to load {os.system.__module__}.system from {d / 'test_batch'}" in msg
    assert 'CIFAR batches hold only arrays, lists, dicts and strings' in msg and '\n' not in msg
    assert msg.startswith(f'cifar10: cannot read the test split from {tmp_path}')


@pytest.mark.parametrize('glob', [('builtins', 'eval'), ('subprocess', 'call'), ('numpy', 'load'), ('numpy.lib.npyio', 'load'),
                                  ('numpy', 'frombuffer'), ('numpy._core.multiarray', 'scalar'), ('posix', 'system')])
def test_only_array_reconstruction_globals_are_admitted(tmp_path, glob):
    d, _ = write_cifar10(tmp_path)
    mod, name = glob      # a protocol-0 pickle that looks up mod.name and calls it with ('x',)
    (d / 'test_batch').write_bytes(f'c{mod}\n{name}\n(S\'x\'\ntR.'.encode())
    with pytest.raises(DataError, match=f'refusing to load {mod}.{name} from'):
        read_cifar(d, 'cifar10', 'test')


def test_meta_file_is_unpickled_safely_too(tmp_path):
    d, _ = write_cifar10(tmp_path)
    marker = tmp_path / 'pwned'
    (d / 'batches.meta').write_bytes(pickle.dumps({b'label_names': Evil(f'touch {marker}')}))
    with pytest.raises(DataError, match='batches.meta'):
        load_dataset('cifar10', root=tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize('protocol', [3, 4, 5])
def test_valid_cifar10_with_bytes_keys_loads(tmp_path, protocol):
    d, test = write_cifar10(tmp_path, protocol=protocol)
    ds = load_dataset('cifar10', split='test', root=tmp_path)
    assert isinstance(ds, ClassificationSet) and len(ds) == 4
    assert ds.classnames == CIFAR10_CLASSES and ds.labels.tolist() == test[b'labels']
    np.testing.assert_array_equal(ds.images, hwc(test[b'data']))
    x = (ds[2][0] * 255).round().byte().numpy()                  # pixel exact at the native 32 px
    np.testing.assert_array_equal(x, test[b'data'][2].reshape(3, 32, 32))
    assert len(load_dataset('cifar10', split='train', root=tmp_path)) == 10


def test_python3_protocol2_pickles_are_refused(tmp_path):
    "Python 3 spells bytes as a _codecs.encode call below protocol 3: not in the admitted set, so refused with a clear message"
    write_cifar10(tmp_path, protocol=2)
    with pytest.raises(DataError, match='refusing to load _codecs.encode from'):
        load_dataset('cifar10', root=tmp_path)


def test_valid_cifar100_layout_loads(tmp_path):
    d, test = write_cifar100(tmp_path)
    ds = load_dataset('cifar100', split='test', root=tmp_path)
    assert ds.classnames == CIFAR100_CLASSES and ds.classnames[1] == 'aquarium fish'
    assert ds.labels.tolist() == test[b'fine_labels']              # fine, not coarse labels
    np.testing.assert_array_equal(ds.images, hwc(test[b'data']))
    assert len(load_dataset('cifar100', split='train', root=tmp_path, n=3)) == 3


def test_python2_numpy1_era_pickles_load(tmp_path):
    "The original batches: written by Python 2 / numpy 1 (numpy.core names, 8-bit strings read as latin1)"
    d, test = write_cifar10(tmp_path)
    old = {k.decode(): v for k, v in test.items()}
    buf = io.BytesIO(); Py2Pickler(buf, 2).dump(old)
    assert b'cnumpy.core.multiarray\n_reconstruct\n' in buf.getvalue()
    (d / 'test_batch').write_bytes(buf.getvalue())
    buf = io.BytesIO(); Py2Pickler(buf, 2).dump({'label_names': CIFAR10_CLASSES, 'num_cases_per_batch': 2})
    (d / 'batches.meta').write_bytes(buf.getvalue())
    x, y, names = read_cifar(d, 'cifar10', 'test')
    np.testing.assert_array_equal(x, hwc(test[b'data']))
    assert y.tolist() == test[b'labels'] and names == CIFAR10_CLASSES


def test_read_cifar_checks_its_arguments(tmp_path):
    with pytest.raises(RobustCLIPError, match="got 'cifar11'"): read_cifar(tmp_path, 'cifar11')
    with pytest.raises(RobustCLIPError, match="got 'val'"): read_cifar(tmp_path, 'cifar10', 'val')


# ---------------------------------------------------------------- bad load_dataset calls: each a one-line RobustCLIPError

def _text_test_batch(root):
    d, _ = write_cifar10(root); (d / 'test_batch').write_text('label,pixels\n3,0 0 0\n')
    return root, 'test_batch'

def _truncated_test_batch(root):
    d, _ = write_cifar10(root); b = (d / 'test_batch').read_bytes(); (d / 'test_batch').write_bytes(b[:len(b) // 2])
    return root, 'test_batch'

def _empty_test_batch(root):
    d, _ = write_cifar10(root); (d / 'test_batch').write_bytes(b'')
    return root, 'test_batch'

def _wrong_shape_batch(root):
    d, test = write_cifar10(root); (d / 'test_batch').write_bytes(pickle.dumps({**test, b'data': test[b'data'][:, :1024]}))
    return root, 'test_batch'

def _label_out_of_range(root):
    d, test = write_cifar10(root); (d / 'test_batch').write_bytes(pickle.dumps({**test, b'labels': [0, 1, 2, 10]}))
    return root, 'labels must lie in [0, 10)'

def _garbage_idx(root):
    for f in ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'): (Path(root) / f).write_bytes(b'\x13\x37 garbage ' * 10)
    return root, 't10k-images-idx3-ubyte'

def _garbage_idx_gz(root):
    for f in ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'): (Path(root) / f).write_bytes(b'not gzip at all')
    return root, 't10k-images-idx3-ubyte.gz'

def _truncated_idx(root):
    x = np.zeros((5, 28, 28), np.uint8)
    (Path(root) / 't10k-images-idx3-ubyte.gz').write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + struct.pack('>3I', 5, 28, 28) + x.tobytes()[:100]))
    (Path(root) / 't10k-labels-idx1-ubyte.gz').write_bytes(gzip.compress(bytes([0, 0, 8, 1]) + struct.pack('>I', 5) + bytes(5)))
    return root, 'truncated'

def _idx_count_mismatch(root):
    (Path(root) / 't10k-images-idx3-ubyte').write_bytes(bytes([0, 0, 8, 3]) + struct.pack('>3I', 2, 28, 28) + bytes(2 * 784))
    (Path(root) / 't10k-labels-idx1-ubyte').write_bytes(bytes([0, 0, 8, 1]) + struct.pack('>I', 3) + bytes(3))
    return root, '2 images but 3 labels'

def _bad_mnist_csv(root):
    p = Path(root) / 'mnist_5k.csv.gz'; p.write_bytes(gzip.compress(b'1,2,3\n4,5\n"unterminated'))
    return p, 'mnist_5k.csv.gz'

def _bad_karpathy_json(root):
    (Path(root) / 'dataset_coco.json').write_text('{"images": [')
    return root, 'dataset_coco.json'

def _non_utf8_karpathy_json(root):
    (Path(root) / 'dataset_flickr30k.json').write_bytes(b'{"images": [\xff\xfe]}')
    return root, 'dataset_flickr30k.json'

def _bad_rcc(root):
    (Path(root) / 'categorization.rcc').write_bytes(b'qres' + bytes(3))
    return root, 'categorization.rcc'

def _corrupt_foolbox_png(root):
    (Path(root) / 'cifar10_00_3.png').write_bytes(b'\x89PNG\r\n\x1a\n not really')
    return root, 'cifar10_00_3.png'


BAD_CALLS = [  # id, dataset, kwargs (or a function making a root and returning it with what the message must say), expected text
    ('unknown-name', 'cifar11', {}, "unknown dataset 'cifar11'"),
    ('unhashable-name', ['cifar10'], {}, "unknown dataset ['cifar10']"),
    ('unknown-split', 'mnist-5k', dict(split='validation'), "unknown split 'validation'"),
    ('image-size-0', 'mnist-5k', dict(image_size=0), 'image_size must be a positive int (e.g. 32 or 224), got 0'),
    ('image-size-negative', 'mnist-5k', dict(image_size=-1), 'got -1'),
    ('image-size-str', 'mnist-5k', dict(image_size='a'), "got 'a'"),
    ('image-size-bool', 'mnist-5k', dict(image_size=True), 'image_size must be a positive int (e.g. 32 or 224), got True'),
    ('image-size-float', 'mnist-5k', dict(image_size=32.0), 'got 32.0'),
    ('n-0', 'mnist-5k', dict(n=0), 'n must be a positive int (how many items to keep) or None (all), got 0'),
    ('n-negative', 'mnist-5k', dict(n=-3), 'got -3'),
    ('n-float', 'mnist-5k', dict(n=2.5), 'got 2.5'),
    ('n-bool', 'mnist-5k', dict(n=True), 'got True'),
    ('seed-negative', 'mnist-5k', dict(seed=-1), 'seed must be an int >= 0, got -1'),
    ('seed-float', 'mnist-5k', dict(seed=1.5), 'got 1.5'),
    ('download-str', 'cifar10', dict(download='yes'), "download must be True or False, got 'yes'"),
    ('root-int', 'cifar10', dict(root=7), 'root must be a path (str or Path) or None, got 7'),
    ('root-missing', 'cifar10', 'missing', 'does not exist'),
    ('root-missing-manual', 'imagenet-sketch', 'missing', 'cannot be downloaded automatically'),
    ('root-is-a-file', 'cifar10', 'file', 'files not found, expected'),
    ('cifar-text-file', 'cifar10', _text_test_batch, 'UnpicklingError'),
    ('cifar-truncated', 'cifar10', _truncated_test_batch, 'UnpicklingError'),
    ('cifar-empty', 'cifar10', _empty_test_batch, 'EOFError'),
    ('cifar-wrong-shape', 'cifar10', _wrong_shape_batch, 'N x 3072'),
    ('cifar-label-out-of-range', 'cifar10', _label_out_of_range, 'got 0..10'),
    ('fashion-mnist-garbage', 'fashion-mnist', _garbage_idx, 'not an IDX file'),
    ('fashion-mnist-garbage-gz', 'fashion-mnist', _garbage_idx_gz, 'BadGzipFile'),
    ('fashion-mnist-truncated', 'fashion-mnist', _truncated_idx, 'header promises'),
    ('fashion-mnist-mismatch', 'fashion-mnist', _idx_count_mismatch, 'fashion-mnist'),
    ('mnist-5k-bad-csv', 'mnist-5k', _bad_mnist_csv, 'Error'),
    ('coco-bad-json', 'coco-captions', _bad_karpathy_json, 'JSONDecodeError'),
    ('flickr-not-utf8', 'flickr30k-captions', _non_utf8_karpathy_json, 'UnicodeDecodeError'),
    ('gcompris-bad-rcc', 'gcompris-categories', _bad_rcc, 'struct.error'),
    ('foolbox-corrupt-png', 'cifar10-samples', _corrupt_foolbox_png, 'UnidentifiedImageError'),
]


@pytest.mark.parametrize('name,kwargs,says', [b[1:] for b in BAD_CALLS], ids=[b[0] for b in BAD_CALLS])
def test_bad_load_dataset_call_is_a_one_line_robustclip_error(tmp_path, name, kwargs, says):
    mention = None
    if kwargs == 'missing': kwargs = dict(root=tmp_path / 'nope'); mention = str(tmp_path / 'nope')
    elif kwargs == 'file':
        f = tmp_path / 'a_file.txt'; f.write_text('not a folder'); kwargs = dict(root=f); mention = str(f)
    elif callable(kwargs):
        root, mention = kwargs(tmp_path); kwargs = dict(root=root)
    with pytest.raises(RobustCLIPError) as ei:
        load_dataset(name, **kwargs)
    e, msg = ei.value, str(ei.value)
    assert isinstance(e, ValueError) and '\n' not in msg and says in msg, msg
    if mention: assert mention in msg, msg
    if 'root' in kwargs and isinstance(kwargs['root'], Path) and kwargs['root'].exists():
        assert str(kwargs['root']) in msg, msg                     # names the root it read from
        if isinstance(e, DataError): assert e.__cause__ is not None and msg.startswith(f'{name}: cannot read')


def test_bad_call_reads_nothing(tmp_path, monkeypatch):
    "Arguments are checked before the loader runs"
    calls = []
    monkeypatch.setitem(DATASETS['cifar10'], 'loader', lambda **kw: calls.append(kw))
    for kw in (dict(image_size=0), dict(n=0), dict(seed=-1), dict(root=tmp_path / 'nope')):
        with pytest.raises(RobustCLIPError): load_dataset('cifar10', **kw)
    assert calls == []


def test_error_classes():
    assert issubclass(SourceNotFound, RobustCLIPError) and issubclass(SourceNotFound, FileNotFoundError)
    assert issubclass(DataError, RobustCLIPError) and not issubclass(DataError, OSError)
    e = SourceNotFound('x: missing')
    assert str(e) == 'x: missing' and e.errno is None


def test_corrupt_lazy_image_is_a_data_error_naming_the_file(tmp_path):
    good, bad = tmp_path / 'good.png', tmp_path / 'bad.jpg'
    Image.new('RGB', (6, 6), 'blue').save(good)
    b = io.BytesIO(); Image.new('RGB', (64, 64), 'red').save(b, 'JPEG'); bad.write_bytes(b.getvalue()[:200])   # truncated JPEG
    ds = ClassificationSet(LazyImages([str(good), str(bad)], open_image), [0, 1], ['a', 'b'], ['{c}'], name='lazy', image_size=8)
    assert ds[0][0].shape == (3, 8, 8)
    with pytest.raises(DataError) as ei: ds[1]
    assert str(bad) in str(ei.value) and 'lazy test: image 1' in str(ei.value) and isinstance(ei.value.__cause__, OSError)


def test_corrupt_image_in_a_lazy_paper_set(tmp_path):
    "An ImageNet-style folder whose JPEG is garbage: the set builds, access raises DataError naming the file"
    wnid = paper_data.imagenet_wnids()[0]
    (tmp_path / 'val' / wnid).mkdir(parents=True)
    p = tmp_path / 'val' / wnid / 'ILSVRC2012_val_00000001.JPEG'; p.write_bytes(b'garbage')
    ds = load_dataset('imagenet', 'test', root=tmp_path, image_size=16)
    with pytest.raises(DataError, match=str(p)): ds[0]


# ---------------------------------------------------------------- availability

def test_available_column(monkeypatch, tmp_path):
    df = list_datasets()
    assert 'available' in df.columns and df.available.dtype == bool and list(df.columns[:6]) == [
        'name', 'task', 'source', 'splits', 'n_classes', 'install']
    monkeypatch.setattr(sources, '_has_module', lambda m: m not in ('sklearn', 'mlxtend', 'foolbox'))
    monkeypatch.setenv('ROBUSTCLIP_DATA', str(tmp_path))
    av = list_datasets().set_index('name').available
    assert not av[['digits', 'mnist-5k', 'cifar10-samples', 'cifar100-samples', 'imagenet-samples']].any()
    assert not av[[k for k, v in DATASETS.items() if not v['offline']]].any()
    write_cifar100(tmp_path); (tmp_path / 'eurosat' / '2750').mkdir(parents=True)
    (tmp_path / 'flickr30k-captions').mkdir(); (tmp_path / 'flickr30k-captions' / 'dataset_flickr30k.json').write_text('{"images": []}')
    av = list_datasets().set_index('name').available
    assert sorted(k for k, v in DATASETS.items() if not v['offline'] and av[k]) == ['cifar100', 'eurosat', 'flickr30k-captions']


def test_available_check_registered_with_the_loader(monkeypatch):
    monkeypatch.setattr(data, 'DATASETS', dict(DATASETS))
    data.register_dataset('never', 'retrieval', ('test',), 'nowhere', 'n/a', 'x', available=lambda: False)(lambda **kw: None)
    data.register_dataset('broken', 'retrieval', ('test',), 'nowhere', 'n/a', 'x', available=lambda: {}['x'])(lambda **kw: None)
    data.register_dataset('always', 'retrieval', ('test',), 'nowhere', 'n/a', 'x')(lambda **kw: None)
    av = data.list_datasets().set_index('name').available
    assert (av['never'], av['broken'], av['always']) == (False, False, True)
    with pytest.raises(RobustCLIPError, match='available must be a function'):
        data.register_dataset('bad', 'retrieval', ('test',), 'nowhere', 'n/a', 'x', available='yes')
