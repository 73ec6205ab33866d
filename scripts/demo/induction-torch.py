"""A second opinion on how slowly a small LLaMA learns to copy at random
distances, in plain PyTorch (not part of the package; Debian's python3-torch).

The task: BOS, then 5..30 tokens drawn from 40, then the same tokens again, one
document after another, cut into sequences of 64 tokens. A model that copies
(an induction head) reaches about half the loss of one that does not
(ln 40 = 3.69). The model is a 2-layer LLaMA (RMSNorm, RoPE, SwiGLU; hidden 64,
4 heads, MLP 128), AdamW lr 3e-3 (betas 0.9/0.95), 20 warm-up steps and cosine
decay, batch 32, clip 1.0: the same recipe `focusllm train --params all --loss
lm` runs. Prints the loss every 500 steps.

    /usr/bin/python3 scripts/demo/induction-torch.py [STEPS=8000]
"""
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
torch.manual_seed(0)
torch.set_num_threads(1)
V, H, L, NH, FF, T = 64, 64, 2, 4, 128, 64

# The data: the same Park-Miller generator as the focusllm run of this task.
s = 11


def r():
    global s
    s = (s * 16807) % 2147483647
    return s / 2147483647


flat = []
for _ in range(40000):
    n = 5 + int(r() * 26)
    a = [3 + int(r() * 40) for _ in range(n)]
    flat += [1] + a + a
n = len(flat) // T
data = torch.tensor(flat[: n * T]).view(n, T)


def rope(x):
    d = x.shape[-1]
    inv = 1.0 / (10000 ** (torch.arange(0, d, 2).float() / d))
    f = torch.outer(torch.arange(x.shape[2]).float(), inv)
    c, sn = f.cos(), f.sin()
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    return torch.cat([x1 * c - x2 * sn, x1 * sn + x2 * c], -1)


class RMS(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.w = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.w


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.n1, self.n2 = RMS(H), RMS(H)
        self.q, self.k, self.v, self.o = (nn.Linear(H, H, bias=False) for _ in range(4))
        self.g, self.u = nn.Linear(H, FF, bias=False), nn.Linear(H, FF, bias=False)
        self.d = nn.Linear(FF, H, bias=False)

    def forward(self, x):
        B, t, _ = x.shape
        h = self.n1(x)
        heads = lambda z: z.view(B, t, NH, H // NH).transpose(1, 2)
        q, k, v = rope(heads(self.q(h))), rope(heads(self.k(h))), heads(self.v(h))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(H // NH)
        att = att.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), 1), float("-inf"))
        x = x + self.o((att.softmax(-1) @ v).transpose(1, 2).reshape(B, t, H))
        h = self.n2(x)
        return x + self.d(F.silu(self.g(h)) * self.u(h))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.e = nn.Embedding(V, H)
        self.blocks = nn.ModuleList(Block() for _ in range(L))
        self.n = RMS(H)
        self.head = nn.Linear(H, V, bias=False)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, 0, 0.02)

    def forward(self, x):
        x = self.e(x)
        for b in self.blocks:
            x = b(x)
        return self.head(self.n(x))


m = Model()
opt = torch.optim.AdamW(m.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0)
g = torch.Generator().manual_seed(1)
for step in range(STEPS):
    x = data[torch.randint(0, n, (32,), generator=g)]
    lr = 3e-3 * min(1, (step + 1) / 20) * 0.5 * (1 + math.cos(math.pi * step / STEPS))
    for pg in opt.param_groups:
        pg["lr"] = lr
    loss = F.cross_entropy(m(x[:, :-1]).reshape(-1, V), x[:, 1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    opt.step()
    if step % 500 == 0 or step == STEPS - 1:
        print(step, round(loss.item(), 3), flush=True)
