#!/usr/bin/env python3
"""Peers of `livefeed bench serving`: faiss IndexHNSWFlat and hnswlib on the
same vectors, queries and filters, filtering as their users do.

  python3 ann_peers.py DIR      (DIR written by the Go harness)

DIR holds config.json, base.npy (n x d float32, unit rows), queries.npy
(q x d) and one mask_<i>.npy (n uint8) per filter. For each engine the index
is built once (2 threads, timed), then per filter:

  * post-filter with over-fetch (faiss, hnswlib): ask for
    kf = min(n, max(k, ceil(overfetch * k / selectivity))) neighbours with
    efSearch = max(ef_search, kf), drop those failing the filter, keep k;
  * faiss with IDSelectorBitmap (faiss-sel): the filter applied inside the
    HNSW traversal, k neighbours, efSearch = ef_search.

Latency: one query per call on one thread, including the filtering.
Throughput: the whole batch on `threads` threads. Results go to
result.json and ids_<engine>_<i>.npy (q x k int64, -1 padded); the Go
harness computes recall against its exact search.
"""
import json
import math
import os
import sys
import time

import numpy as np


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def log(*a):
    print("peers:", *a, file=sys.stderr, flush=True)


def postfilter(ids, mask, k):
    out = np.full((ids.shape[0], k), -1, dtype=np.int64)
    for r in range(ids.shape[0]):
        row = ids[r]
        row = row[row >= 0]
        keep = row[mask[row] != 0][:k]
        out[r, : len(keep)] = keep
    return out


def pct(lat, p):
    s = sorted(lat)
    i = max(0, min(len(s) - 1, int(p * len(s) + 0.5) - 1))
    return s[i] * 1000


class Faiss:
    name = "faiss"

    def __init__(self, cfg, base):
        import faiss

        self.faiss = faiss
        faiss.omp_set_num_threads(cfg["threads"])
        self.index = faiss.IndexHNSWFlat(base.shape[1], cfg["M"], faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = cfg["ef_construction"]
        self.index.add(base)
        self.params = "IndexHNSWFlat(M=%d, efConstruction=%d, inner product), faiss %s" % (
            cfg["M"], cfg["ef_construction"], faiss.__version__)

    def search(self, q, kf, ef, threads):
        self.faiss.omp_set_num_threads(threads)
        self.index.hnsw.efSearch = ef
        _, ids = self.index.search(q, kf)
        return ids


class FaissSel:
    """faiss with the filter inside the traversal (IDSelectorBitmap)."""
    name = "faiss-sel"

    def __init__(self, faiss_engine):
        self.f = faiss_engine
        self.params = "same index, SearchParametersHNSW(sel=IDSelectorBitmap)"

    def search_sel(self, q, k, ef, threads, packed):
        faiss = self.f.faiss
        faiss.omp_set_num_threads(threads)
        sel = faiss.IDSelectorBitmap(len(packed), faiss.swig_ptr(packed))
        params = faiss.SearchParametersHNSW()
        params.efSearch = ef
        params.sel = sel
        _, ids = self.f.index.search(q, k, params=params)
        return ids


class HNSWLib:
    name = "hnswlib"

    def __init__(self, cfg, base):
        import hnswlib

        self.index = hnswlib.Index(space="ip", dim=base.shape[1])
        self.index.init_index(max_elements=base.shape[0], ef_construction=cfg["ef_construction"],
                              M=cfg["M"], random_seed=cfg["seed"])
        self.index.set_num_threads(cfg["threads"])
        self.index.add_items(base, np.arange(base.shape[0]))
        self.params = "Index(space=ip, M=%d, ef_construction=%d), hnswlib %s" % (
            cfg["M"], cfg["ef_construction"], getattr(hnswlib, "__version__", "0.8"))

    def search(self, q, kf, ef, threads):
        self.index.set_ef(ef)
        ids, _ = self.index.knn_query(q, k=kf, num_threads=threads)
        return ids.astype(np.int64)


def main():
    d = sys.argv[1]
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    base = np.load(os.path.join(d, "base.npy"))
    queries = np.load(os.path.join(d, "queries.npy"))
    n, k, threads = base.shape[0], cfg["k"], cfg["threads"]
    masks = [np.load(os.path.join(d, c["mask"])) for c in cfg["cases"]]
    result = {"engines": [], "rows": []}

    for make in (Faiss, HNSWLib):
        r0, t0 = rss_bytes(), time.perf_counter()
        eng = make(cfg, base)
        build = time.perf_counter() - t0
        mem = rss_bytes() - r0
        log("%s built in %.1fs, %d MB" % (eng.name, build, mem >> 20))
        result["engines"].append({"name": eng.name, "build_s": build, "memory_bytes": mem,
                                  "memory_note": "process RSS growth during the build", "params": eng.params})
        engines = [(eng.name, eng, None)]
        if make is Faiss:
            fs = FaissSel(eng)
            engines.append((fs.name, fs, True))
            result["engines"].append({"name": fs.name, "build_s": 0, "memory_bytes": 0,
                                      "memory_note": "the faiss index", "params": fs.params})
        for name, e, is_sel in engines:
            for ci, c in enumerate(cfg["cases"]):
                mask, sel = masks[ci], max(c["sel"], 1.0 / n)
                if is_sel:
                    packed = np.packbits(mask.astype(np.uint8), bitorder="little")
                    kf, ef = k, max(cfg["ef_search"], k)
                    one = lambda q, th: e.search_sel(q, k, ef, th, packed)
                else:
                    kf = int(min(n, max(k, math.ceil(cfg["overfetch"] * k / sel))))
                    ef = max(cfg["ef_search"], kf)
                    one = lambda q, th: postfilter(e.search(q, kf, ef, th), mask, k)
                for i in range(min(20, len(queries))):  # warm-up
                    one(queries[i:i + 1], 1)
                lat, outs = [], []
                t0 = time.perf_counter()
                for i in range(len(queries)):
                    t = time.perf_counter()
                    outs.append(one(queries[i:i + 1], 1))
                    lat.append(time.perf_counter() - t)
                seq = time.perf_counter() - t0
                ids = np.vstack(outs).astype(np.int64)
                t0 = time.perf_counter()
                one(queries, threads)
                batch = time.perf_counter() - t0
                fn = "ids_%s_%d.npy" % (name, ci)
                np.save(os.path.join(d, fn), ids)
                row = {"case": c["name"], "engine": name, "ids": fn, "fetch_k": kf, "ef": ef,
                       "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99),
                       "qps_1": len(queries) / seq, "qps_clients": len(queries) / batch}
                result["rows"].append(row)
                log("%-9s %-8s fetch %d ef %d p50 %.3fms p99 %.3fms %.0f q/s, batch %.0f q/s" % (
                    name, c["name"], kf, ef, row["p50_ms"], row["p99_ms"], row["qps_1"], row["qps_clients"]))
        del eng, engines

    with open(os.path.join(d, "result.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
