#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (test/fuzz/corpus/<target>/).

Seeds are small valid inputs plus a few near misses, so that libFuzzer starts
from the shapes real files have instead of from nothing. The output is
committed; run this again only to change it:

    python3 test/fuzz/make_corpus.py
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ELEM = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "U8": 1, "BOOL": 1, "F64": 8}


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def safetensors(tensors, metadata=None, pad=True, header=None, tail=b""):
    """tensors: [(name, dtype, shape)]; data laid out in order, bytes i % 251."""
    h, off = {}, 0
    if metadata is not None:
        h["__metadata__"] = metadata
    for name, dt, shape in tensors:
        n = ELEM[dt]
        for d in shape:
            n *= d
        h[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n]}
        off += n
    text = (header or json.dumps(h, separators=(",", ":"))).encode()
    if pad:
        text += b" " * (-len(text) % 8)  # the format pads the header to 8 bytes
    data = bytes(i % 251 for i in range(off))
    return struct.pack("<Q", len(text)) + text + data + tail


def main():
    # safetensors: a LLaMA-shaped checkpoint in miniature, every dtype
    # family, a scalar and an empty tensor, and near misses.
    layer = [("model.layers.0.input_layernorm.weight", "F32", [4]),
             ("model.layers.0.self_attn.q_proj.weight", "BF16", [4, 4]),
             ("model.layers.0.self_attn.k_proj.weight", "F16", [2, 4]),
             ("model.layers.0.self_attn.v_proj.weight", "F16", [2, 4])]
    write("safetensors", "tiny-llama.safetensors",
          safetensors([("model.embed_tokens.weight", "F32", [8, 4])] + layer +
                      [("lm_head.weight", "BF16", [8, 4])], metadata={"format": "pt"}))
    write("safetensors", "dtypes.safetensors",
          safetensors([("a", "I64", [2]), ("b", "U8", [3]), ("c", "BOOL", [1]), ("d", "F64", []),
                       ("e", "F32", [0, 5])]))
    write("safetensors", "empty-header.safetensors", safetensors([]))
    write("safetensors", "unpadded.safetensors", safetensors([("x", "F32", [2, 2])], pad=False))
    write("safetensors", "trailing-bytes.safetensors", safetensors([("x", "F32", [1])], tail=b"\0\0\0\0"))
    write("safetensors", "overlap.safetensors", safetensors(
        [], header='{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                   '"y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}') + bytes(12))
    write("safetensors", "unknown-dtype.safetensors", safetensors(
        [], header='{"x":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}') + bytes(1))
    write("safetensors", "big-offsets.safetensors", safetensors(
        [], header='{"x":{"dtype":"U8","shape":[18446744073709551615],'
                   '"data_offsets":[0,9223372036854775808]}}'))
    write("safetensors", "short.safetensors", b"\x10\0\0\0")

    # config: the fixtures' configs and the fields they do not use.
    for fixture in ("tiny-gqa", "tiny-gqa-bf16"):
        with open(os.path.join(ROOT, "test", "fixtures", fixture, "config.json")) as f:
            write("config", fixture + ".json", f.read())
    base = {"vocab_size": 512, "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2}
    write("config", "minimal.json", json.dumps(base))
    write("config", "llama3.json", json.dumps(dict(
        base, head_dim=32, rope_theta=500000.0, bos_token_id=128, eos_token_id=[2, 3, 4], model_type="llama",
        hidden_act="silu", attention_bias=True, tie_word_embeddings=True, mlp_bias=False, torch_dtype="bfloat16",
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 8192}), indent=1))
    write("config", "linear.json", json.dumps(dict(
        base, model_type="mistral", rope_scaling={"type": "linear", "factor": 2.0}, eos_token_id=None,
        max_position_embeddings=32768, rms_norm_eps=1e-5, beacon_param=["q", "k", "v", "o", "mlp"])))
    write("config", "nulls.json", json.dumps(dict(
        base, num_key_value_heads=None, head_dim=None, rope_scaling=None, beacon_param=None,
        model_type="focusllm", rope_theta=1e4)))
    write("config", "bad-kv-heads.json", json.dumps(dict(base, num_key_value_heads=3)))

    # json: the grammar's corners and an index file.
    with open(os.path.join(ROOT, "test", "fixtures", "tiny-gqa-bf16", "model.safetensors.index.json")) as f:
        write("json", "index.json", f.read())
    samples = {
        "scalars.json": '[null, true, false, 0, -0, 1.5e-3, -12E+4, 9223372036854775807, '
                        '18446744073709551616, 1e400, ""]',
        "strings.json": '{"a": "\\"\\\\\\/\\b\\f\\n\\r\\t", "b": "\\u00e9\\u4e2d\\ud83d\\ude00", '
                        '"c": "\u00e9\u4e2d\U0001f600", "a": "last wins"}',
        "nested.json": "[" * 40 + "{}" + "]" * 40,
        "object.json": '{"weight_map": {"x": "a.safetensors"}, "metadata": {"total_size": 123}, "k": [1, [2, {}]]}',
        "whitespace.json": ' \t\r\n{ "a" : [ 1 , 2 ] }\n',
        "lone-surrogate.json": '"\\ud800x"',
        "bad-utf8.json": b'"\xc0\xaf"',
    }
    for name, text in samples.items():
        write("json", name, text)


if __name__ == "__main__":
    main()
