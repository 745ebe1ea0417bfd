"""Writes a tiny LLaMA-architecture GGUF model that llama.cpp loads and answers with.

No weights can be downloaded, and the tests need a model that behaves predictably: every
answer is the same short sentence, then end-of-text, so a conversation grows by a known
amount each turn and a tiny `max_tokens` cuts it. The weights make that so: the two
transformer layers add nothing to the residual stream (their output projections are zero,
the rest random), every token's embedding points one common way except the answer's words,
which each own one axis, and the output matrix maps "anything else" to the first word and
each word to the next, the last one to `</s>`. It is still a real model file: a real
tokenizer (SentencePiece pieces with byte fallback, so any text, Cyrillic and emoji
included, tokenizes), Phi-4's own chat template, and a context length of its own.

Runs in the llama.cpp venv (it needs `gguf` and `numpy`), not in the project's:
``python tiny_model.py OUT.gguf``.
"""

from __future__ import annotations

import string
import sys
from pathlib import Path

import gguf
import numpy as np

ANSWER = ("▁Hello", "▁from", "▁the", "▁tiny", "▁llama", "!")
"""The answer's pieces, in order: every answer reads " Hello from the tiny llama!"."""
PHI4_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' and 'tools' in message "
    "and message['tools'] is not none %}{{ '<|' + message['role'] + '|>' + message['content'] "
    "+ '<|tool|>' + message['tools'] + '<|/tool|>' + '<|end|>' }}{% else %}{{ '<|' + "
    "message['role'] + '|>' + message['content'] + '<|end|>' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% else %}{{ eos_token }}{% endif %}"
)
"""Phi-4-multimodal's chat template: string content only, as its tokenizer config has it."""
N_EMBD, N_HEAD, N_FF, N_LAYER, TRAINED_CONTEXT = 64, 4, 128, 2, 4096
NORMAL, UNKNOWN, CONTROL, BYTE = 1, 2, 3, 6


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    """Pieces, their scores and types: control tokens, the 256 bytes, then text pieces."""
    pieces = ["<unk>", "<s>", "</s>"]
    types = [UNKNOWN, CONTROL, CONTROL]
    pieces += [f"<0x{b:02X}>" for b in range(256)]
    types += [BYTE] * 256
    text = ["▁", *string.ascii_letters, *string.digits, *string.punctuation]
    words = ["▁the", "▁a", "▁is", "▁of", "▁and", "▁to", "▁in", "▁it", "▁you", "▁what"]
    words += ["<|", "|>", "user", "system", "assistant", "end"]
    text = list(dict.fromkeys([*text, *words, *ANSWER]))  # each piece once
    pieces += text
    types += [NORMAL] * len(text)
    # longer pieces score higher, so the tokenizer prefers them to their letters
    scores = [0.0] * (3 + 256) + [float(len(p)) - 10.0 for p in text]
    return pieces, scores, types


def weights(pieces: list[str]) -> dict[str, np.ndarray]:
    """Every tensor, shaped as numpy sees it (ggml's dimensions reversed)."""
    rng = np.random.default_rng(24)
    vocab = len(pieces)
    answer = [pieces.index(p) for p in ANSWER]
    eos = pieces.index("</s>")
    embed = np.zeros((vocab, N_EMBD), dtype=np.float32)
    embed[:, 0] = 1.0  # the common direction: "not one of the answer's words"
    embed += rng.normal(0.0, 0.01, embed.shape).astype(np.float32)
    output = np.zeros((vocab, N_EMBD), dtype=np.float32)
    output[answer[0], 0] = 2.0  # anything else → the first word
    for axis, token in enumerate(answer, start=1):
        embed[token] = 0.0
        embed[token, axis] = 1.0
        following = answer[axis] if axis < len(answer) else eos
        output[following, axis] = 2.0  # each word → the next; the last → end of text
    tensors: dict[str, np.ndarray] = {
        "token_embd.weight": embed,
        "output_norm.weight": np.ones(N_EMBD, dtype=np.float32),
        "output.weight": output,
    }
    for layer in range(N_LAYER):

        def random(*shape: int) -> np.ndarray:
            return rng.normal(0.0, 0.02, shape).astype(np.float32)

        prefix = f"blk.{layer}."
        tensors |= {
            prefix + "attn_norm.weight": np.ones(N_EMBD, dtype=np.float32),
            prefix + "attn_q.weight": random(N_EMBD, N_EMBD),
            prefix + "attn_k.weight": random(N_EMBD, N_EMBD),
            prefix + "attn_v.weight": random(N_EMBD, N_EMBD),
            prefix + "attn_output.weight": np.zeros((N_EMBD, N_EMBD), dtype=np.float32),
            prefix + "ffn_norm.weight": np.ones(N_EMBD, dtype=np.float32),
            prefix + "ffn_gate.weight": random(N_FF, N_EMBD),
            prefix + "ffn_up.weight": random(N_FF, N_EMBD),
            prefix + "ffn_down.weight": np.zeros((N_EMBD, N_FF), dtype=np.float32),
        }
    return tensors


def write_model(path: Path) -> None:
    """Write the model to `path` (through a temporary file, so a reader never sees half)."""
    pieces, scores, types = vocabulary()
    partial = path.with_suffix(".partial")
    writer = gguf.GGUFWriter(str(partial), "llama")
    writer.add_name("phi4bot tiny test llama")
    writer.add_context_length(TRAINED_CONTEXT)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(pieces)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(pieces.index("<s>"))
    writer.add_eos_token_id(pieces.index("</s>"))
    writer.add_unk_token_id(pieces.index("<unk>"))
    writer.add_add_bos_token(True)
    writer.add_chat_template(PHI4_CHAT_TEMPLATE)
    for name, tensor in weights(pieces).items():
        writer.add_tensor(name, tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(path)


if __name__ == "__main__":
    write_model(Path(sys.argv[1]))
