"""A tiny random EmbeddingGemma 2 checkpoint, laid out as google/embeddinggemma-2 is on the Hub.

    make_folder(path)                       config.json (model_type embedding_gemma2, tiny text / vision / audio
                                            sub-configs), model.safetensors, tokenizer.json + tokenizer_config.json
                                            (the image / audio / video soft tokens), processor_config.json,
                                            preprocessor_config.json, video_preprocessor_config.json (as
                                            save_pretrained writes them), and sentence-transformers' modules.json,
                                            config_sentence_transformers.json (PROMPTS), sentence_bert_config.json
    make_folder(path, vision=False)         the same without the vision tower (config and weights)

The tokenizer is a small BPE over letters, digits and punctuation built with `tokenizers` (no hub access);
the weights are random with a fixed seed. Everything is written by transformers' and sentence-transformers'
own save_pretrained, so the folder is what a user's download looks like, at toy sizes.
"""

from __future__ import annotations

import json
from pathlib import Path

PROMPTS = {
    "query": "task: search result | query: ",
    "document": "title: none | text: ",
    "Clustering": "task: clustering | query: ",
    "CodeRetrieval": "task: code retrieval | query: ",
    "STS": "task: sentence similarity | query: ",
}
MAX_SEQ_LENGTH = 96  # the tiny model's context: a paragraph already needs several windows
EMBEDDING_DIM = 768  # the real model's: its Matryoshka prefixes 512 / 256 / 128 apply as they are
PATCH, POOL, IMAGE_TOKENS, VIDEO_TOKENS = 4, 2, 70, 70  # 70 soft tokens of 2x2 patches of 4 px: ~67x67 px

SPECIAL = ["<pad>", "<eos>", "<bos>", "<unk>"]
MEDIA = {
    "boi_token": "<|image>",
    "eoi_token": "<image|>",
    "image_token": "<|image|>",
    "boa_token": "<|audio>",
    "eoa_token": "<audio|>",
    "audio_token": "<|audio|>",
}
VIDEO_TOKEN = "<|video|>"


def _tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789.,!?:|;-'\"()/_=+*#<>[]{}")
    vocab = {t: i for i, t in enumerate(SPECIAL)}
    for c in chars:
        vocab.setdefault(c, len(vocab))
        vocab.setdefault("▁" + c, len(vocab))
    merges = []
    for a in "etaoinsrh":
        for b in "etaoinsrh":
            vocab["▁" + a + b] = len(vocab)
            merges.append(("▁" + a, b))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace()
    return gemma_tokenizer(tok, MAX_SEQ_LENGTH)


def gemma_tokenizer(tok, max_length: int):
    """`tok` (a tokenizers.Tokenizer) with Gemma's <bos> ... <eos> template, its special names, the media tokens and
    the video token, as transformers' PreTrainedTokenizerFast (what the processor loads from a real folder)."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", pair="<bos> $A <eos> $B <eos>", special_tokens=[("<bos>", 2), ("<eos>", 1)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_special_tokens=dict(MEDIA),
        model_max_length=max_length,
    )
    fast.add_special_tokens({"additional_special_tokens": [VIDEO_TOKEN]}, replace_extra_special_tokens=False)
    return fast


def _config(tokenizer, vision: bool, audio: bool):
    from transformers import EmbeddingGemma2Config
    from transformers.models.gemma4 import Gemma4AudioConfig, Gemma4VisionConfig

    text = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        sliding_window=8,  # smaller than the test sentences: the sliding layers' mask matters
        hidden_size_per_layer_input=8,
        embedding_dim=EMBEDDING_DIM,
        max_position_embeddings=4096,
        sliding_window_pattern=2,
        global_head_dim=16,
    )
    vision_cfg = Gemma4VisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=16,
        patch_size=PATCH,
        pooling_kernel_size=POOL,
        position_embedding_size=128,
    )
    audio_cfg = Gemma4AudioConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        subsampling_conv_channels=[128, 4],  # the first must be the 128 mel bins (the projection assumes it)
        output_proj_dims=32,
        conv_kernel_size=5,
    )
    ids = {k: tokenizer.convert_tokens_to_ids(v) for k, v in MEDIA.items()}
    return EmbeddingGemma2Config(
        text_config=text,
        vision_config=vision_cfg.to_dict() if vision else None,
        audio_config=audio_cfg.to_dict() if audio else None,
        boi_token_id=ids["boi_token"],
        eoi_token_id=ids["eoi_token"],
        image_token_id=ids["image_token"],
        video_token_id=tokenizer.convert_tokens_to_ids(VIDEO_TOKEN),
        boa_token_id=ids["boa_token"],
        eoa_token_index=ids["eoa_token"],
        audio_token_id=ids["audio_token"],
    )


def make_folder(path: str | Path, *, vision: bool = True, audio: bool = True, seed: int = 0) -> Path:
    """Write the tiny checkpoint to `path` (created); returns it."""
    import torch
    from transformers import EmbeddingGemma2Model

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer()
    config = _config(tokenizer, vision, audio)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = EmbeddingGemma2Model(config).eval()
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    if vision:
        from transformers.models.gemma4 import Gemma4ImageProcessorPil

        Gemma4ImageProcessorPil(
            patch_size=PATCH, pooling_kernel_size=POOL, max_soft_tokens=IMAGE_TOKENS
        ).save_pretrained(path)
        _write(path / "video_preprocessor_config.json", video_config())
    _sentence_transformers(path)
    return path


def video_config(**changes) -> dict:
    """video_preprocessor_config.json as EmbeddingGemma2VideoProcessor.save_pretrained writes it (its class
    attributes; transformers' video processor needs torchvision to run, so it is written here), at the tiny sizes."""
    return {
        "video_processor_type": "EmbeddingGemma2VideoProcessor",
        "processor_class": "EmbeddingGemma2Processor",
        "do_convert_rgb": True,
        "do_resize": True,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [0.0, 0.0, 0.0],
        "image_std": [1.0, 1.0, 1.0],
        "resample": 3,
        "do_sample_frames": True,
        "default_to_square": True,
        "patch_size": PATCH,
        "pooling_kernel_size": POOL,
        "max_soft_tokens": VIDEO_TOKENS,
        "fps": 1,
        "max_frames": 32,
        "overflow_strategy": "uniform",
        "add_timestamps": False,
        "return_metadata": False,
    } | changes


def _sentence_transformers(path: Path) -> None:
    """sentence-transformers' files as it writes them: Transformer -> mean Pooling -> Normalize, the prompts."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    _write(path / "modules.json", modules)
    _write(
        path / "config_sentence_transformers.json",
        {
            "prompts": PROMPTS,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
            "model_type": "SentenceTransformer",
        },
    )
    _write(path / "sentence_bert_config.json", {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False})
    _write(
        path / "1_Pooling" / "config.json",
        {"word_embedding_dimension": EMBEDDING_DIM, "pooling_mode_mean_tokens": True},
    )
    (path / "2_Normalize").mkdir(exist_ok=True)


def _write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
