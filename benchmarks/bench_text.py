"""Benchmark the text tower: `robustclip_nb.clip.text_tower` (each text cut after its end-of-text token, texts of
like length together) against open_clip's own `encode_text` (the whole context), measured in the same run.

Two workloads:
  1. Zero-shot class prompts (no gradient): the ImageNet class names x templates of the offline `imagenet-samples`
     set, through the offline models' text tower (robustclip-vit-tiny, 32-token context; the trained offline-base
     weights if they are cached, else random ones) and through ViT-B-32's (77 tokens, random weights: speed only).
  2. A training step of the offline base model (`robustclip base`: the CLIP loss over a batch of 256 images and their
     unique texts, forward, backward and an AdamW step), on the recipe's real batches.
Each pair runs interleaved (ours, theirs, ours, theirs, ...) so that a change in the machine's speed hits both.

Usage:
  python benchmarks/bench_text.py --out figures/benchmarks/bench_text_cpu.json     # ~5 min on 2 cores

Prints a table and writes JSON records (per workload: seconds of each implementation, the ratio, the largest
difference between their outputs).
"""
import os, json, time, argparse, platform
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import torch, torch.nn.functional as F

def parse():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default=None, help='write JSON results here')
    p.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    p.add_argument('--templates', type=int, default=8, help='templates per ImageNet class for the tiny model (of 80)')
    p.add_argument('--vitb-texts', type=int, default=500, help='class prompts for ViT-B-32 (one template)')
    p.add_argument('--batch', type=int, default=256, help='texts per encode call (as class_embeddings does)')
    p.add_argument('--train-steps', type=int, default=10, help='training steps per implementation and repeat')
    p.add_argument('--repeats', type=int, default=2, help='interleaved repeats of each pair')
    return p.parse_args()

def encode_all(fn, tok, batch):
    with torch.no_grad(): return torch.cat([fn(tok[i:i + batch]) for i in range(0, len(tok), batch)])

def timed(f):
    t = time.perf_counter(); out = f(); return out, time.perf_counter() - t

def main():
    a = parse()
    torch.set_num_threads(a.threads)
    import open_clip
    from robustclip_nb.clip import load_clip, text_tower, CLIP, multi_positive_clip_loss, _pooled_position
    from robustclip_nb.data import load_dataset
    from robustclip_nb.zoo import OFFLINE_MODELS, CaptionPool, make_batch_fn, offline_model_path, load_model
    ds = load_dataset('imagenet-samples', split='test')
    records = []

    def prompts_case(label, m, tokenizer, texts):
        tok = tokenizer(texts); m.eval()
        used = (_pooled_position(m, tok) + 1).float()
        t_ours, t_theirs = [], []
        for _ in range(a.repeats):
            ours, dt = timed(lambda: encode_all(lambda t: text_tower(m, t), tok, a.batch)); t_ours.append(dt)
            theirs, dt = timed(lambda: encode_all(m.encode_text, tok, a.batch)); t_theirs.append(dt)
        records.append(dict(workload=label, n_texts=len(texts), context=tok.shape[1], mean_tokens_used=round(float(used.mean()), 2),
                            ours_s=min(t_ours), open_clip_s=min(t_theirs), speedup=min(t_theirs) / min(t_ours),
                            max_abs_diff=float((ours - theirs).abs().max()), max_abs_value=float(theirs.abs().max())))

    base = 'offline-base'
    tiny = load_model(base) if offline_model_path(base).exists() else load_clip(OFFLINE_MODELS[base].arch)   # never trains it here
    weights = 'offline-base (trained here)' if offline_model_path(base).exists() else 'random'
    texts = [t.format(c=c) for c in ds.classnames for t in ds.templates[:a.templates]]
    prompts_case(f'class prompts, robustclip-vit-tiny ({weights})', tiny.model, tiny.tokenizer, texts)
    vitb = open_clip.create_model('ViT-B-32')
    prompts_case('class prompts, ViT-B-32 (random weights)', vitb, open_clip.get_tokenizer('ViT-B-32'),
                 [ds.templates[0].format(c=c) for c in ds.classnames][:a.vitb_texts])
    del vitb

    # a training step of the base model, on the recipe's batches, from the same starting weights for both
    r = OFFLINE_MODELS[base]
    clip = load_clip(r.arch)
    pool = CaptionPool(r, clip.tokenizer, clip.image_size)
    batches = make_batch_fn(pool, r)
    start = {k: v.clone() for k, v in clip.state_dict().items()}
    def whole(self, texts, normalize=True):   # open_clip's encode_text over the whole context
        tok = texts if isinstance(texts, torch.Tensor) else self.tokenize(texts)
        f = self.model.encode_text(tok); return F.normalize(f, dim=-1) if normalize else f
    impls = {'ours': CLIP.encode_text, 'open_clip': whole}
    times, losses = {k: [] for k in impls}, {}
    try:
        for _ in range(a.repeats):
            for name, enc in impls.items():
                CLIP.encode_text = enc
                clip.load_state_dict(start)
                opt = torch.optim.AdamW(clip.parameters(), lr=1e-3, weight_decay=0.1)
                t = time.perf_counter(); ls = []
                for s in range(a.train_steps):
                    loss, _ = multi_positive_clip_loss(clip, batches(s)); opt.zero_grad(); loss.backward(); opt.step(); ls.append(float(loss))
                times[name].append((time.perf_counter() - t) / a.train_steps); losses[name] = ls
    finally:
        CLIP.encode_text = impls['ours']
    records.append(dict(workload=f'offline-base training step (batch {r.batch_size})', n_texts=None, context=pool.tokens.shape[1],
                        mean_tokens_used=round(float((pool.tokens.argmax(-1) + 1).float().mean()), 2),
                        ours_s=min(times['ours']), open_clip_s=min(times['open_clip']), speedup=min(times['open_clip']) / min(times['ours']),
                        max_abs_diff=max(abs(x - y) for x, y in zip(losses['ours'], losses['open_clip'])), max_abs_value=max(losses['ours'])))

    print(f"{'workload':58} {'texts':>6} {'ctx':>4} {'used':>5} {'ours s':>8} {'open_clip s':>11} {'ratio':>6} {'max |diff|':>10}")
    for x in records:
        print(f"{x['workload']:58} {x['n_texts'] or '':>6} {x['context']:>4} {x['mean_tokens_used']:>5.1f} {x['ours_s']:8.3f} "
              f"{x['open_clip_s']:11.3f} {x['speedup']:5.2f}x {x['max_abs_diff']:10.2e}")
    print("seconds: the faster of the interleaved repeats (per step for training); 'used': mean positions up to the end-of-text token; "
          "max |diff|: largest difference of the embeddings (of the losses, over the training steps)")
    if a.out:
        vers = {'torch': torch.__version__, 'open_clip': open_clip.__version__}
        meta = dict(threads=a.threads, repeats=a.repeats, templates=a.templates, batch=a.batch, train_steps=a.train_steps,
                    versions=vers, platform=platform.platform(), processor=platform.processor(), date=time.strftime('%Y-%m-%d'))
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out + '.tmp', 'w') as f: json.dump(dict(meta=meta, records=records), f, indent=1)
        os.replace(a.out + '.tmp', a.out)
        print(f'wrote {a.out}')

if __name__ == '__main__': main()
