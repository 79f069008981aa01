"""The L-inf threat set is respected exactly in float32: `((x_adv - x).abs() <= eps_f32).all()` and 0 <= x_adv <= 1,
for the projection itself, the random starts and the outputs of PGD, APGD and AutoAttack. The L2 projection is unchanged."""
import pytest, torch, torch.nn as nn
from robustclip_nb.threats import project, project_to_threat, random_start, lp_norm
from robustclip_nb.attacks import PGD, APGD, AutoAttack
import robustclip_nb.threats as threats

EPS = [0.25 / 255, 1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255]
N = 10**6
DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])   # where a GPU exists, its kernels are checked too


def _inside(x_adv, x, eps):
    "The strict check, in the images' own precision; returns the number of violations of ball and box."
    e = torch.tensor(eps, dtype=x.dtype)
    return int(((x_adv - x).abs() > e).sum()) + int((x_adv < 0).sum()) + int((x_adv > 1).sum())


def _xs(g, n=N):
    "Clean pixels: uniform, concentrated near 0, near 0.5 and near 1 (both sides, clamped), and on the 8-bit grid k/255."
    u = lambda: torch.rand(n, generator=g)
    return {'uniform': u(),
            'near0': (u() * 0.02) ** 2,
            'near0.5': 0.5 + (u() - 0.5) * 0.02,
            'near1': (1 - (u() * 0.02) ** 2),
            'grid': torch.randint(0, 256, (n,), generator=g).float() / 255}


def _deltas(g, eps, n=N):
    "Candidate perturbations: far outside, exactly at the boundary, one float32 ulp inside and outside it, inside."
    sign = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    e = torch.tensor(eps, dtype=torch.float32)
    return {'far': torch.randn(n, generator=g) * 2,
            'at': sign * eps,
            'just-inside': sign * torch.nextafter(e, torch.tensor(0.0)),
            'just-outside': sign * torch.nextafter(e, torch.tensor(1.0)),
            'inside': (torch.rand(n, generator=g) * 2 - 1) * eps}


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('eps', EPS)
def test_projection_exact_in_float32(eps, device):
    g = torch.Generator().manual_seed(round(eps * 255 * 4))
    for xname, x in _xs(g).items():
        x = x.view(-1, 1, 10, 10).to(device)                                # a batch of images
        for dname, d in _deltas(g, eps).items():
            xa = project_to_threat(x, x + d.view_as(x).to(device), eps)
            assert xa.dtype == torch.float32
            assert _inside(xa, x, eps) == 0, (xname, dname)


def test_naive_formula_does_overshoot():
    "The test above has teeth: the previous 'ball, then box' formula violates the strict check, by one float32 ulp."
    g = torch.Generator().manual_seed(0)
    x = torch.rand(N, generator=g); eps = 0.25 / 255
    far = x + torch.randn(N, generator=g)
    naive = (x + (far - x).clamp(-eps, eps)).clamp(0, 1)
    over = (naive - x).abs() - torch.tensor(eps)
    assert (over > 0).sum() > 1000 and over.max() <= 2 ** -24 + 1e-12
    assert _inside(project_to_threat(x, far, eps), x, eps) == 0


def test_without_nudges_the_clamp_alone_is_not_exact(monkeypatch):
    "The ulp correction is what makes it exact: with it switched off, the clamp to [x-eps, x+eps] overshoots."
    g = torch.Generator().manual_seed(1)
    x = 0.5 + (torch.rand(N, generator=g) - 0.5) * 0.02; eps = 0.25 / 255
    far = x + torch.randn(N, generator=g)
    monkeypatch.setattr(threats, '_LINF_NUDGES', 0)
    assert _inside(project_to_threat(x, far, eps), x, eps) > 0
    monkeypatch.setattr(threats, '_LINF_NUDGES', 1)                       # one ulp step always sufficed
    assert _inside(project_to_threat(x, far, eps), x, eps) == 0


def test_interior_points_unchanged_and_eps_zero():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(1000, 3, 4, 4, generator=g)
    inner = x + (torch.rand(x.shape, generator=g) * 2 - 1) * (4 / 255) * 0.9
    inner = inner.clamp(0, 1)
    assert torch.equal(project_to_threat(x, inner, 4 / 255), inner)        # bit for bit
    assert torch.equal(project_to_threat(x, x + torch.randn(x.shape, generator=g), 0.0), x)


def test_float64_exact_too():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(N, generator=g, dtype=torch.float64).view(-1, 1, 10, 10)
    for eps in EPS:
        xa = project_to_threat(x, x + torch.randn(x.shape, generator=g, dtype=torch.float64), eps)
        assert xa.dtype == torch.float64 and _inside(xa, x, eps) == 0


@pytest.mark.parametrize('eps', EPS)
def test_random_starts_exact(eps):
    g = torch.Generator().manual_seed(4)
    for xname, x in _xs(g, 200_000).items():
        x = x.view(-1, 2, 10, 10)
        xs = random_start(x, eps, 'linf', torch.Generator().manual_seed(5))
        assert _inside(xs, x, eps) == 0, xname
        xs = APGD(lambda a: a.flatten(1)[:, :3], eps=eps)._start(x, torch.Generator().manual_seed(6))
        assert _inside(xs, x, eps) == 0, xname


def test_l2_projection_unchanged():
    "L2 keeps its formula: project onto the ball, then clamp to the box."
    g = torch.Generator().manual_seed(7)
    x = torch.rand(64, 3, 8, 8, generator=g)
    for eps in [0.1, 0.5, 2.0]:
        far = x + torch.randn(x.shape, generator=g)
        test = project_to_threat(x, far, eps, 'l2')
        assert torch.equal(test, (x + project(far - x, eps, 'l2')).clamp(0, 1))
        assert (lp_norm(test - x, 'l2') <= eps * (1 + 1e-6)).all()


# ---------- the attacks' outputs ----------

def _linear(n_in, n_cls=5, seed=0):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Flatten(), nn.Linear(n_in, n_cls)).eval()
    with torch.no_grad(): m[1].weight.mul_(20)                              # logits that move within a small ball
    return m


def _batches():
    "Images (64, 3, 8, 8): uniform, near 0, near 0.5, near 1, binary (0 or 1: the box binds everywhere), 8-bit grid."
    g = torch.Generator().manual_seed(8)
    shape = (64, 3, 8, 8); u = lambda: torch.rand(shape, generator=g)
    return {'uniform': u(), 'near0': (u() * 0.02) ** 2, 'near0.5': 0.5 + (u() - 0.5) * 0.02, 'near1': 1 - (u() * 0.02) ** 2,
            'binary': (u() > 0.5).float(), 'grid': torch.randint(0, 256, shape, generator=g).float() / 255}


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('eps', EPS)
def test_pgd_apgd_autoattack_outputs_exact(eps, device):
    m = _linear(3 * 8 * 8).to(device)
    for xname, x in _batches().items():
        x = x.to(device); y = m(x).argmax(1)
        for atk in [PGD(m, eps=eps, steps=10), PGD(m, eps=eps, steps=10, momentum=0.9, restarts=2),
                    PGD(m, eps=eps, steps=5, step_size=4 * eps, track_best=False),         # big steps: every step is clamped
                    PGD(m, eps=eps, steps=0), APGD(m, eps=eps, steps=20), APGD(m, eps=eps, steps=10, objective='dlr', restarts=2),
                    APGD(m, eps=eps, steps=10, skip_successful=False)]:
            adv = atk(x, y)
            assert adv.dtype == torch.float32 and _inside(adv, x, eps) == 0, (xname, atk)
        aa = AutoAttack(m, eps=eps, steps=10, n_target_classes=3)
        assert _inside(aa(x, y), x, eps) == 0, (xname, 'autoattack')


def test_attacks_reach_the_boundary():
    "Exact does not mean timid: on a linear model PGD ends on the boundary (|x_adv - x| = eps in float32) where the box allows."
    m = _linear(3 * 8 * 8); eps = 4 / 255
    x = 0.2 + 0.6 * torch.rand(64, 3, 8, 8, generator=torch.Generator().manual_seed(9))
    adv = PGD(m, eps=eps, steps=20)(x, m(x).argmax(1))
    d = (adv - x).abs()
    assert _inside(adv, x, eps) == 0 and (d >= torch.tensor(eps) - 2 ** -23).float().mean() > 0.9


def test_eps_zero_run_returns_input():
    m = _linear(3 * 8 * 8); x = _batches()['uniform']; y = m(x).argmax(1)
    for atk in [PGD(m, eps=0, steps=3), APGD(m, eps=0, steps=5), AutoAttack(m, eps=0, steps=3)]:
        assert torch.equal(atk.run(x, y), x)
