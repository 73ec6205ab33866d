#!/usr/bin/env python3
"""A PyTorch second opinion on `focusllm grad` (not part of the package's tests).

Reads a checkpoint and one training example and prints the same JSON as `focusllm grad`:
{"loss": x, "grads": {tensor name: [row-major values], ...}}, computed by torch autograd in
float64 (or float32 with --float32), written independently of the engine and of
test/helpers/train-reference.ts. The FocusLLM example follows DESIGN.md 1b:

  memory = x[0:s] (continuation) or all of x (repetition), cut into chunks of C tokens; each
  chunk runs as chunk ++ P, P = withBos(x[s+l-t : s+l]), t = min(promptCap, C, l), positions
  0.., causal, its last token the candidate (candidate projections); the local sequence
  withBos(x[s:s+l]) attends to the k candidate KVs (pre-rotary keys rotated at 0..k-1, fully
  visible) and causally to itself (positions k..); loss = CE of x[s+l] at its last position.

Trainable (the project's rules): focus losses train the candidate projections beacon_param
lists (default q k v o; "mlp" adds up/down), missing ones starting as copies of the base ones;
lm trains every tensor the model runs with (not beacon_embed_tokens, not candidate tensors
beacon_param leaves out). Needs Debian's CPU torch: apt-get install -y python3-torch python3-numpy

usage:
  /usr/bin/python3 scripts/torch-grad-peer.py --model DIR --ids IDS.json --loss continuation|repetition \\
      --local-start S --local-size L --chunk-size C [--prompt-cap 512] [--float32]
  /usr/bin/python3 scripts/torch-grad-peer.py --model DIR --ids IDS.json --loss lm [--loss-start S] [--float32]
"""
import argparse
import glob
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        s, e = info["data_offsets"]
        raw, dt = data[s:e], info["dtype"]
        if dt == "BF16":
            a = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif dt == "F16":
            a = np.frombuffer(raw, dtype=np.float16)
        elif dt == "F32":
            a = np.frombuffer(raw, dtype=np.float32)
        else:
            raise SystemExit(f"{path}: {name} has dtype {dt}, not supported")
        out[name] = torch.from_numpy(a.astype(np.float64).reshape(info["shape"]))
    return out


def inv_freq(cfg, hd):
    theta = cfg.get("rope_theta", 10000.0)
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    rs = cfg.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "linear":
        inv = inv / rs["factor"]
    elif kind == "llama3":
        old = rs["original_max_position_embeddings"]
        low_w, high_w = old / rs["low_freq_factor"], old / rs["high_freq_factor"]
        w = 2 * math.pi / inv
        smooth = (old / w - rs["low_freq_factor"]) / (rs["high_freq_factor"] - rs["low_freq_factor"])
        mid = (1 - smooth) * inv / rs["factor"] + smooth * inv
        inv = torch.where(w < high_w, inv, torch.where(w > low_w, inv / rs["factor"], mid))
    elif kind not in (None, "default"):
        raise SystemExit(f"rope_scaling {rs} not supported")
    return inv


class Llama:
    def __init__(self, d, params, dtype):
        self.cfg = c = json.load(open(os.path.join(d, "config.json")))
        self.names = []  # checkpoint order
        w = {}
        idx = os.path.join(d, "model.safetensors.index.json")
        files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) else \
            sorted(os.path.basename(f) for f in glob.glob(os.path.join(d, "*.safetensors")))
        for f in files:
            part = load_safetensors(os.path.join(d, f))
            self.names += list(part)
            w.update(part)
        self.H = c["num_attention_heads"]
        self.KV = c.get("num_key_value_heads", self.H)
        self.hd = c.get("head_dim") or c["hidden_size"] // self.H
        self.nl, self.eps, self.bos = c["num_hidden_layers"], c.get("rms_norm_eps", 1e-6), c.get("bos_token_id", 1)
        self.inv = inv_freq(c, self.hd)
        bp = c.get("beacon_param")
        trainable = set(bp if bp is not None else ["q", "k", "v", "o"]) if params == "candidate" else set()
        unused = {"model.beacon_embed_tokens.weight"}
        self.cand = []  # per layer: {proj: candidate tensor prefix}
        train = []
        for i in range(self.nl):
            used = {}
            for p in ("q", "k", "v", "o", "up", "down"):
                key = "mlp" if p in ("up", "down") else p
                mod = "mlp" if key == "mlp" else "self_attn"
                base, cn = f"model.layers.{i}.{mod}.{p}_proj", f"model.layers.{i}.{mod}.beacon_{p}_proj"
                present = cn + ".weight" in w
                if key in trainable and not present:
                    w[cn + ".weight"] = w[base + ".weight"].clone()
                    if base + ".bias" in w:
                        w[cn + ".bias"] = w[base + ".bias"].clone()
                if key in trainable:
                    train += [cn + ".weight"] + ([cn + ".bias"] if cn + ".bias" in w else [])
                if key in trainable or (present and (bp is None or key in bp)):
                    used[p] = cn
                if present and bp is not None and key not in bp:
                    unused |= {cn + ".weight", cn + ".bias"}
            self.cand.append(used)
        if params == "all":
            train = [n for n in self.names if n not in unused]
        self.w = {k: v.to(dtype) for k, v in w.items()}
        self.train = train
        for n in train:
            self.w[n].requires_grad_(True)
        self.head = self.w["model.embed_tokens.weight"] if c.get("tie_word_embeddings") else self.w["lm_head.weight"]

    def rope(self, x, pos):  # x (T, heads, hd) -> rotate-half at positions pos (T)
        ang = pos.to(torch.float64)[:, None] * self.inv
        cos = torch.cat([ang.cos(), ang.cos()], -1).to(x.dtype)[:, None]
        sin = torch.cat([ang.sin(), ang.sin()], -1).to(x.dtype)[:, None]
        h = self.hd // 2
        return x * cos + torch.cat([-x[..., h:], x[..., :h]], -1) * sin

    def norm(self, x, wt):
        return wt * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))

    def lin(self, x, layer, mod, p, cand):
        base = f"model.layers.{layer}.{mod}.{p}_proj"
        y = F.linear(x, self.w[base + ".weight"], self.w.get(base + ".bias"))
        cn = self.cand[layer].get(p) if cand else None
        if cn is None:
            return y
        bias = self.w.get(cn + ".bias", self.w.get(base + ".bias"))
        return torch.cat([y[:-1], F.linear(x[-1:], self.w[cn + ".weight"], bias)], 0)

    def forward(self, ids, pos0, cand=False, prefix=None):
        """One sequence; returns the last layer's output (T, dim) and per layer the pre-rotary (k, v)."""
        T = len(ids)
        x = self.w["model.embed_tokens.weight"][torch.tensor(ids)]
        pos = torch.arange(pos0, pos0 + T)
        kvs = []
        for i in range(self.nl):
            p = f"model.layers.{i}."
            h = self.norm(x, self.w[p + "input_layernorm.weight"])
            q = self.lin(h, i, "self_attn", "q", cand).view(T, self.H, self.hd)
            k = self.lin(h, i, "self_attn", "k", cand).view(T, self.KV, self.hd)
            v = self.lin(h, i, "self_attn", "v", cand).view(T, self.KV, self.hd)
            kvs.append((k, v))
            q, k = self.rope(q, pos), self.rope(k, pos)
            P = 0
            if prefix is not None:
                pk, pv = prefix[i]
                P = pk.shape[0]
                k = torch.cat([self.rope(pk, torch.arange(P)), k], 0)
                v = torch.cat([pv, v], 0)
            g = self.H // self.KV
            k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)  # (P+T, H, hd)
            mask = torch.full((T, P + T), float("-inf"), dtype=x.dtype).triu(P + 1)
            att = torch.einsum("thd,shd->hts", q, k) / math.sqrt(self.hd) + mask
            o = torch.einsum("hts,shd->thd", att.softmax(-1), v).reshape(T, self.H * self.hd)
            x = x + self.lin(o, i, "self_attn", "o", cand)
            h = self.norm(x, self.w[p + "post_attention_layernorm.weight"])
            gate = F.linear(h, self.w[p + "mlp.gate_proj.weight"])
            x = x + self.lin(F.silu(gate) * self.lin(h, i, "mlp", "up", cand), i, "mlp", "down", cand)
        return x, kvs

    def logits(self, x):
        return F.linear(self.norm(x, self.w["model.norm.weight"]), self.head)


def focus_loss(m, x, kind, s, l, C, cap):
    wb = lambda a: a if a and a[0] == m.bos else [m.bos] + a
    t = min(cap, C, l)
    P = wb(x[s + l - t: s + l])
    mem = x[:s] if kind == "continuation" else x
    ks = [[] for _ in range(m.nl)]
    vs = [[] for _ in range(m.nl)]
    for b in range(0, len(mem), C):
        _, kvs = m.forward(mem[b:b + C] + P, 0, cand=True)
        for i, (k, v) in enumerate(kvs):
            ks[i].append(k[-1:])
            vs[i].append(v[-1:])
    prefix = [(torch.cat(ks[i], 0), torch.cat(vs[i], 0)) for i in range(m.nl)]
    h, _ = m.forward(wb(x[s:s + l]), len(ks[0]), prefix=prefix)
    return F.cross_entropy(m.logits(h[-1:]), torch.tensor([x[s + l]]))


def main():
    ap = argparse.ArgumentParser(description="torch autograd peer of `focusllm grad`")
    ap.add_argument("--model", required=True)
    ap.add_argument("--ids", required=True)
    ap.add_argument("--loss", choices=["continuation", "repetition", "lm"], required=True)
    ap.add_argument("--local-start", type=int)
    ap.add_argument("--local-size", type=int)
    ap.add_argument("--chunk-size", type=int)
    ap.add_argument("--prompt-cap", type=int, default=512)
    ap.add_argument("--loss-start", type=int, default=1, help="lm: the first scored token (default 1)")
    ap.add_argument("--float32", action="store_true", help="compute in float32 (default float64)")
    a = ap.parse_args()
    x = json.load(open(a.ids))
    if isinstance(x, dict):
        x = x["ids"]
    m = Llama(a.model, "all" if a.loss == "lm" else "candidate", torch.float32 if a.float32 else torch.float64)
    if a.loss == "lm":
        s0 = a.loss_start
        if not 1 <= s0 < len(x):
            raise SystemExit(f"bad --loss-start {s0}: the first scored token, in 1..{len(x) - 1}")
        h, _ = m.forward(x, 0)
        loss = F.cross_entropy(m.logits(h[s0 - 1:-1]), torch.tensor(x[s0:]))
    else:
        s, l, C = a.local_start, a.local_size, a.chunk_size
        if None in (s, l, C) or l < 1 or C < 1 or a.prompt_cap < 1 or s < (1 if a.loss == "continuation" else 0) \
                or s + l >= len(x):
            raise SystemExit(f"bad geometry: N {len(x)}, s {s}, l {l}, C {C}, prompt cap {a.prompt_cap}")
        loss = focus_loss(m, x, a.loss, s, l, C, a.prompt_cap)
    loss.backward()
    grads = {n: (m.w[n].grad if m.w[n].grad is not None else torch.zeros_like(m.w[n])).reshape(-1).tolist()
             for n in m.train}
    print(json.dumps({"loss": float(loss), "grads": grads}))


if __name__ == "__main__":
    main()
