"""Integration tests of the attack modules (threats, attacks, text_attacks, multimodal) that do not fit inside the notebook (fast, CPU, offline)."""
import os
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import logging, tempfile
from pathlib import Path
import pytest, torch, torch.nn as nn, torch.nn.functional as F
from robustclip_nb.core import RobustCLIPError
from robustclip_nb.threats import ImageEmbedder, TargetedDLR, EmbeddingL2, RetrievalCE, lp_norm
from robustclip_nb.attacks import PGD, APGD, AutoAttack, apgd_checkpoints
from robustclip_nb.text_attacks import (TextAttack, CharEditCandidates, MaskedLMCandidates, EmbeddingNeighbourCandidates,
                                        STOP_WORDS)
from robustclip_nb.multimodal import MultimodalAttack


def _linear(n_classes=2, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 6, n_classes)).eval()

def _cnn(seed=0):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
                      nn.Flatten(), nn.Linear(128, 5)).eval()
    with torch.no_grad():
        for l in m:
            if hasattr(l, 'weight'): l.weight.mul_(3); l.bias.zero_()
    return m

def _data(model, n=32, shape=(3, 8, 8), seed=1, lo=0.0, hi=1.0):
    g = torch.Generator().manual_seed(seed)
    x = lo + (hi - lo) * torch.rand(n, *shape, generator=g)
    with torch.no_grad(): y = model(x).argmax(1)
    return x, y

def _acc(model, x, y):
    with torch.no_grad(): return (model(x).argmax(1) == y).float().mean().item()

@pytest.fixture(scope='module', autouse=True)
def _one_thread():
    "Tiny models run fastest on one thread (and do not suffer from contention on a shared 2-core box)."
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

@pytest.fixture(scope='module')
def clip():
    from robustclip_nb.clip import load_clip
    logging.disable(logging.WARNING)
    try: return load_clip('robustclip-vit-nano')
    finally: logging.disable(logging.NOTSET)


# ---------- image attacks: optimality on a linear model ----------

@pytest.mark.parametrize('n_classes', [2, 4])
def test_linear_linf_worst_case(n_classes):
    "For a linear model the L-inf worst case of the margin to class j is x - eps*sign(w_y - w_j)."
    m = _linear(n_classes)
    x, y = _data(m, 16, (3, 6, 6), lo=0.2, hi=0.8)
    eps = 3 / 255
    W = m[1].weight.detach()
    if n_classes == 2:
        adv = PGD(m, eps=eps, steps=20)(x, y)
        j = 1 - y
    else:   # minimise the margin to a fixed class j with a custom objective: the optimum is the same corner
        j = (y + 1) % n_classes
        margin = lambda z, t: z.gather(1, t[1][:, None])[:, 0] - z.gather(1, t[0][:, None])[:, 0]
        adv = PGD(m, eps=eps, steps=20, objective=margin)(x, (y, j))
    expect = x - eps * (W[y] - W[j]).view(-1, 3, 6, 6).sign()
    torch.testing.assert_close(adv, expect, atol=1e-6, rtol=0)

def test_linear_l2_worst_case():
    "For a 2-class linear model the L2 worst case is x - eps * (w_y - w_j)/||w_y - w_j||."
    m = _linear(2)
    x, y = _data(m, 8, (3, 6, 6), lo=0.3, hi=0.7)
    eps = 0.1
    d = (m[1].weight[y] - m[1].weight[1 - y]).detach()
    expect = x - eps * (d / d.norm(dim=1, keepdim=True)).view_as(x)
    for atk in [PGD(m, eps=eps, norm='l2', steps=50, step_size=eps / 4), APGD(m, eps=eps, norm='l2', steps=50)]:
        adv = atk(x, y)
        torch.testing.assert_close(adv, expect, atol=2e-3, rtol=0)
        assert (lp_norm(adv - x, 'l2') <= eps + 1e-5).all()


# ---------- strength orderings and sanity checks ----------

def test_apgd_at_least_as_strong_as_pgd_and_aa_strongest():
    m = _cnn(); x, y = _data(m)
    for eps in [2 / 255, 4 / 255]:
        r_pgd = _acc(m, PGD(m, eps=eps, steps=10)(x, y), y)
        r_apgd = _acc(m, APGD(m, eps=eps, steps=100)(x, y), y)
        r_aa = _acc(m, AutoAttack(m, eps=eps, steps=100)(x, y), y)
        assert r_aa <= r_apgd <= r_pgd

def test_monotone_in_eps_and_large_eps_breaks_everything():
    m = _cnn(); x, y = _data(m)
    accs = [_acc(m, APGD(m, eps=e / 255, steps=30)(x, y), y) for e in [0, 1, 2, 4, 8, 32]]
    assert accs[0] == 1.0 and accs[-1] == 0.0
    assert all(a >= b for a, b in zip(accs, accs[1:]))

def test_eps_zero_returns_clean_input_without_calling_model():
    calls = []
    def model(x): calls.append(1); return x.flatten(1)[:, :3]
    x = torch.rand(4, 3, 5, 5); y = torch.tensor([0, 1, 2, 0])
    for atk in [PGD(model, eps=0), APGD(model, eps=0), AutoAttack(model, eps=0), PGD(model, eps='0', norm='l2')]:
        adv = atk(x, y)
        assert torch.equal(adv, x) and adv is not x
    assert not calls

def test_steps_zero():
    m = _cnn(); x, y = _data(m, 8)
    assert torch.equal(PGD(m, eps=4 / 255, steps=0, random_start=False)(x, y), x)
    x0 = PGD(m, eps=4 / 255, steps=0)(x, y)
    assert not torch.equal(x0, x) and (lp_norm(x0 - x) <= 4 / 255 + 1e-7).all()

def test_restarts_never_worse():
    m = _cnn(); x, y = _data(m)
    ce = lambda a: F.cross_entropy(m(a), y, reduction='none').detach()
    one = PGD(m, eps=2 / 255, steps=3)(x, y); three = PGD(m, eps=2 / 255, steps=3, restarts=3)(x, y)
    fooled1, fooled3 = m(one).argmax(1) != y, m(three).argmax(1) != y
    assert (fooled3 | ~fooled1).all()                           # every point fooled with 1 restart stays fooled
    still = ~fooled1 & ~fooled3
    assert (ce(three)[still] >= ce(one)[still] - 1e-6).all()    # and the loss never drops
    assert _acc(m, APGD(m, eps=2 / 255, steps=10, restarts=3)(x, y), y) <= _acc(m, APGD(m, eps=2 / 255, steps=10)(x, y), y)

def test_momentum_path_and_track_best_off():
    m = _cnn(); x, y = _data(m)
    for norm, eps in [('linf', 4 / 255), ('l2', 0.3)]:
        adv = PGD(m, eps=eps, norm=norm, steps=10, momentum=0.9)(x, y)
        assert (lp_norm(adv - x, norm) <= eps + 1e-5).all() and adv.min() >= 0 and adv.max() <= 1
        assert _acc(m, adv, y) < 1.0
    last = PGD(m, eps=4 / 255, steps=10, track_best=False)(x, y)
    best = PGD(m, eps=4 / 255, steps=10)(x, y)
    assert _acc(m, best, y) <= _acc(m, last, y)

def test_balls_and_box_respected_near_box_edges():
    m = _cnn(); x = (torch.rand(16, 3, 8, 8) > 0.5).float()    # all pixels at 0 or 1: clamping is active everywhere
    y = m(x).argmax(1)
    for atk, norm, eps in [(PGD(m, eps=8 / 255), 'linf', 8 / 255), (PGD(m, eps=0.5, norm='l2'), 'l2', 0.5),
                           (APGD(m, eps=8 / 255, steps=10), 'linf', 8 / 255), (APGD(m, eps=0.5, norm='l2', steps=10), 'l2', 0.5)]:
        adv = atk(x, y)
        assert (lp_norm(adv - x, norm) <= eps + 1e-5).all() and adv.min() >= 0 and adv.max() <= 1

def test_apgd_checkpoints_match_reference_windows():
    # windows of floor(0.22 N), shrinking by floor(0.03 N) down to floor(0.06 N)
    cps = apgd_checkpoints(100)
    assert [b - a for a, b in zip([0] + cps, cps)] == [22, 19, 16, 13, 10, 7, 6, 6]
    assert apgd_checkpoints(1) == [1]

def test_targeted_and_autoattack_on_three_and_two_classes():
    m3 = _linear(3); x, y = _data(m3, 16, (3, 6, 6))
    adv = APGD(m3, eps=8 / 255, steps=10, objective=TargetedDLR(rank=2))(x, y)   # 3 classes: z_pi4 falls back to z_pi3
    assert torch.isfinite(adv).all()
    aa = AutoAttack(m3, eps=8 / 255, steps=10); aa(x, y)
    assert [n for n, _ in aa.log] == ['clean', 'apgd-ce', 'apgd-t']
    m2 = _linear(2); x2, y2 = _data(m2, 16, (3, 6, 6))
    aa2 = AutoAttack(m2, eps=8 / 255, steps=10); aa2(x2, y2)
    assert [n for n, _ in aa2.log] == ['clean', 'apgd-ce']

def test_no_param_grads_and_flags_restored():
    m = _cnn(); x, y = _data(m, 8)
    m[0].weight.requires_grad_(False)
    for atk in [PGD(m, steps=2), APGD(m, steps=5), AutoAttack(m, steps=3)]:
        atk(x, y)
        assert [p.requires_grad for p in m.parameters()] == [False] + [True] * 5
        assert all(p.grad is None for p in m.parameters())

def test_train_mode_not_changed():
    m = nn.Sequential(nn.Flatten(), nn.Dropout(0.0), nn.Linear(48, 3)).train()
    x = torch.rand(4, 3, 4, 4); y = torch.tensor([0, 1, 2, 0])
    PGD(m, steps=2)(x, y)
    assert m.training
    m.eval(); PGD(m, steps=2)(x, y); assert not m.training

def test_deterministic_and_global_rng_untouched():
    m = _cnn(); x, y = _data(m, 8)
    state = torch.random.get_rng_state()
    a = APGD(m, steps=10, seed=3)(x, y)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a, APGD(m, steps=10, seed=3)(x, y))
    assert not torch.equal(PGD(m, steps=1, seed=1)(x, y), PGD(m, steps=1, seed=2)(x, y))


# ---------- validation ----------

@pytest.mark.parametrize('kw,msg', [(dict(eps=-0.1), '>= 0'), (dict(eps='8'), 'exceeds 1'), (dict(eps=float('nan')), 'finite'),
                                    (dict(steps=-1), 'steps'), (dict(norm='l1'), 'unknown norm'),
                                    (dict(objective='hinge'), 'unknown objective'), (dict(restarts=0), 'restarts'),
                                    (dict(momentum=2.0), 'momentum'), (dict(step_size=-1), 'step_size')])
def test_constructor_validation(kw, msg):
    with pytest.raises(RobustCLIPError, match=msg): PGD(_cnn(), **kw)

def test_call_validation():
    m = _cnn(); x, y = _data(m, 4)
    atk = PGD(m, steps=1)
    with pytest.raises(RobustCLIPError, match='batch sizes must match'): atk(x, y[:2])
    with pytest.raises(RobustCLIPError, match=r'\[0,1\]'): atk(x * 3, y)
    with pytest.raises(RobustCLIPError, match='NaN'): atk(x.masked_fill(x > 0.5, float('nan')), y)
    with pytest.raises(RobustCLIPError, match='B,C,H,W'): atk(x[0], y)
    with pytest.raises(RobustCLIPError, match='needs labels'): atk(x)
    with pytest.raises(RobustCLIPError, match=r'\[0,5\)'): atk(x, torch.tensor([0, 1, 2, 9]))
    with pytest.raises(RobustCLIPError, match='NaN or infinite'): PGD(m, objective='l2')(x, torch.full((4, 5), float('inf')))
    with pytest.raises(RobustCLIPError, match='compares embeddings'): PGD(m, objective='l2')(x, torch.zeros(4, 7))
    with pytest.raises(RobustCLIPError, match='at least 3 classes'): APGD(_linear(2), objective='dlr', steps=2)(*_data(_linear(2), 4, (3, 6, 6)))


# ---------- CLIP objectives ----------

def test_fare_objective_against_frozen_reference(clip):
    import copy
    torch.manual_seed(0); x = torch.rand(4, 3, 32, 32)
    ref = copy.deepcopy(clip).encode_image(x, normalize=False).detach()
    adv = PGD(ImageEmbedder(clip), eps=4 / 255, steps=5, objective=EmbeddingL2())(x, ref)
    d = lambda a: (clip.encode_image(a, normalize=False) - ref).pow(2).sum(-1)
    assert (d(adv) > d(x) + 1e-6).all()

def test_retrieval_objective_lowers_recall(clip):
    torch.manual_seed(0); x = torch.rand(6, 3, 32, 32)
    T = clip.encode_image(x).detach()                    # captions = the images' own embeddings: R@1 = 1 when clean
    obj = RetrievalCE(T, scale=100.0)
    adv = APGD(clip, eps=16 / 255, steps=20, objective=obj)(x, torch.arange(6))
    with torch.no_grad():
        assert (obj.logits(clip(x)).argmax(1) == torch.arange(6)).all()
        assert (obj.logits(clip(adv)).argmax(1) != torch.arange(6)).any()


# ---------- text attacks ----------

PROMPTS = ['a photo of a small red car.', 'a blurry photo of the big dog', 'a drawing of a cat on a green sofa']

@pytest.mark.parametrize('budget', [1, 2, 3])
def test_text_attack_changes_exactly_budget_words(clip, budget):
    res = TextAttack(clip, generator='chars', budget=budget, require_gain=False)(PROMPTS)
    for o, t, ch in zip(res.original, res.texts, res.changes):
        ow, tw = o.split(), t.split()
        assert len(ow) == len(tw)
        diff = [j for j in range(len(ow)) if ow[j] != tw[j]]
        assert len(diff) == budget == len(ch) and sorted(c[0] for c in ch) == diff
        assert all(ow[j].strip('.').lower() not in STOP_WORDS for j in diff)

def test_text_attack_gain_and_budget_zero(clip):
    res = TextAttack(clip, generator='embedding', budget=2)(PROMPTS)
    assert all(1 <= n <= 2 for n in res.n_changed)
    assert all(s > 0 for s in res.scores)                 # KL to the clean text grew
    assert TextAttack(clip, budget=0)(PROMPTS).texts == PROMPTS

def test_text_attack_importance_mask_and_custom_objective(clip):
    g_img = clip.encode_text(['a red car']).detach()
    obj = lambda emb, i: -(F.normalize(emb, dim=-1) @ g_img[0])      # move away from 'a red car'
    res = TextAttack(clip, generator='embedding', objective=obj, importance='mask')(['a photo of a red car'])
    assert res.n_changed == [1]
    before = (clip.encode_text(['a photo of a red car']) @ g_img[0]).item()
    after = (clip.encode_text(res.texts) @ g_img[0]).item()
    assert after < before

def test_char_edits():
    e = CharEditCandidates().edits('dog')
    assert {'odg', 'do', 'fog', 'dig'} <= set(e) and 'dog' not in e
    assert CharEditCandidates(ops=('delete',)).edits('abc') == ['bc', 'ac', 'ab']

def test_embedding_neighbours_whole_words_only(clip):
    gen = EmbeddingNeighbourCandidates(clip)
    c = gen(['a', 'photo', 'of', 'a', 'tractor'], 4, 10)
    assert len(c) == 10 and all(w.isalpha() and w == w.lower() and w != 'tractor' for w in c)
    assert all(w + '</w>' in clip.tokenizer.encoder for w in c)

def test_masked_lm_generator_with_tiny_random_bert(clip):
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer
    vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] + 'a photo of the cat dog car ship bird small big red ##s ##ing'.split()
    with tempfile.TemporaryDirectory() as d:
        Path(d, 'vocab.txt').write_text('\n'.join(vocab)); tok = BertTokenizer(str(Path(d, 'vocab.txt')))
    torch.manual_seed(0)
    bert = BertForMaskedLM(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                      intermediate_size=32, max_position_embeddings=32)).eval()
    for mask in [False, True]:
        gen = MaskedLMCandidates(bert, tok, mask_word=mask)
        c = gen(['a', 'photo', 'of', 'a', 'cats'], 4, 4)       # multi-piece word ('cat', '##s')
        assert 1 <= len(c) <= 4 and all(w in vocab and not w.startswith('##') and w not in STOP_WORDS for w in c)
    res = TextAttack(clip, generator=MaskedLMCandidates(bert, tok), budget=1, require_gain=False)(['a small red car'])
    assert res.n_changed == [1] and res.changes[0][0][2] in vocab

def test_masked_lm_offline_fails_fast():
    import time
    t = time.time()
    with pytest.raises(RobustCLIPError, match="generator='embedding'"):
        MaskedLMCandidates('bert-base-uncased')(['a', 'cat'], 1, 3)
    assert time.time() - t < 15


# ---------- multimodal ----------

def test_multimodal_classification_both_orders(clip):
    from robustclip_nb.clip import zero_shot_classifier
    torch.manual_seed(0); x = torch.rand(6, 3, 32, 32)
    classes = ['cat', 'dog', 'car']
    zs = zero_shot_classifier(clip, classes)
    y = zs(x).argmax(1)
    for order in ['text-first', 'image-first']:
        adv, tres = MultimodalAttack(clip, eps=8 / 255, steps=5, order=order).classification(x, y, classes)
        assert (lp_norm(adv - x) <= 8 / 255 + 1e-7).all() and len(tres) == 3
        assert MultimodalAttack(clip, order=order).config()['order'] == order


def test_multimodal_evaluation_at_least_as_strong_as_text_alone():
    "evaluate_classification's multimodal attack starts from the text attack's prompts, then attacks the images."
    from robustclip_nb.data import load_dataset
    from robustclip_nb.evaluate import evaluate_classification
    from robustclip_nb.zoo import load_model
    clip = load_model('offline-nano')
    ds = load_dataset('digits', split='test', image_size=clip.image_size, n=48, seed=0)
    ds.templates = ds.templates[:1]
    acc = {'none': evaluate_classification(clip, ds)[0], 'text': evaluate_classification(clip, ds, 'text')[0],
           'multimodal': evaluate_classification(clip, ds, 'multimodal', eps=4 / 255, steps=3)[0]}
    assert acc['multimodal']['value'] <= acc['text']['value'] <= acc['none']['value']
    assert acc['multimodal']['value'] < acc['none']['value'] and acc['multimodal']['steps'] == 3


# ---------- agreement with the reference semantics (torchattacks / auto-attack) ----------

def test_at_least_as_strong_as_torchattacks():
    torchattacks = pytest.importorskip('torchattacks')
    m = _cnn(); x, y = _data(m, 64, seed=2)
    for eps in [2 / 255, 4 / 255]:
        ours = _acc(m, APGD(m, eps=eps, steps=50)(x, y), y)
        theirs = _acc(m, torchattacks.APGD(m, eps=eps, steps=50, seed=0)(x, y), y)
        assert ours <= theirs + 1 / 64
        # APGD-CE + APGD-T (lite AutoAttack) vs torchattacks' APGD-T alone on the same points
        aa = _acc(m, AutoAttack(m, eps=eps, steps=50)(x, y), y)
        t_apgdt = _acc(m, torchattacks.APGDT(m, eps=eps, steps=50, n_classes=5, seed=0)(x, y), y)
        assert aa <= min(theirs, t_apgdt) + 1 / 64

def test_apgd_skips_points_already_misclassified():
    m = _cnn(); x, y = _data(m, 16)
    y = y.clone(); y[:4] = (y[:4] + 1) % 5                    # four points misclassified on the clean input
    adv = APGD(m, eps=4 / 255, steps=10)(x, y)
    assert torch.equal(adv[:4], x[:4])                          # returned unchanged, as in AutoAttack
    adv_all = APGD(m, eps=4 / 255, steps=10, skip_successful=False)(x, y)
    assert not torch.equal(adv_all[:4], x[:4])
    # embedding objectives have no notion of success: every point is attacked
    e = EmbeddingL2()
    assert not torch.equal(APGD(m, eps=4 / 255, steps=5, objective=e)(x)[:4], x[:4])
