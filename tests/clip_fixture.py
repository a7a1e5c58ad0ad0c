"""Write a tiny random-weight CLIP model folder in openai/clip-vit-large-patch14's layout (both towers).

``config.json`` + ``model.safetensors`` (a ``CLIPModel``: vision and text towers, projections),
``preprocessor_config.json`` (30 x 30 images) and a CLIP BPE tokenizer whose vocabulary is the 256 byte
symbols alone and their end-of-word forms (no merges), so every text tokenises to characters. Nothing is
downloaded; the vision and text encoders of brainkit load it as they load the real folder.
"""

from __future__ import annotations

import json
from pathlib import Path

PROJECTION_DIM = 12


def _byte_symbols() -> list[str]:
    """GPT-2 / CLIP's reversible byte -> unicode table, in its order."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes, extra = kept[:], 0
    for byte in range(256):
        if byte not in kept:
            kept.append(byte)
            codes.append(256 + extra)
            extra += 1
    return [chr(code) for code in codes]


def write_tiny_clip(folder: str | Path, num_hidden_layers: int = 2) -> Path:
    """A CLIP folder with random weights (seeded), projection_dim 12, 30 x 30 images of 3 x 3 patches."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    symbols = _byte_symbols()
    vocab = {token: index for index, token in enumerate(symbols + [s + "</w>" for s in symbols])}
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    tower = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": num_hidden_layers,
             "num_attention_heads": 2, "projection_dim": PROJECTION_DIM}  # fmt: skip
    config = CLIPConfig(
        vision_config={**tower, "image_size": 30, "patch_size": 10},
        text_config={**tower, "vocab_size": len(vocab), "max_position_embeddings": 77,
                     "bos_token_id": vocab["<|startoftext|>"], "eos_token_id": vocab["<|endoftext|>"],
                     "pad_token_id": vocab["<|endoftext|>"]},
        projection_dim=PROJECTION_DIM,
    )  # fmt: skip
    with torch.random.fork_rng():  # seeded weights, without touching the caller's random state
        torch.manual_seed(0)
        CLIPModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 30}, crop_size={"height": 30, "width": 30}).save_pretrained(
        folder
    )
    return folder
