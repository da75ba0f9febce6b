"""FAISS index types and usearch HNSW for bench/types.ts, on the same data and coarse quantizer.

A line-oriented server like faiss_ivf.py (one JSON request per line on stdin, one JSON reply per
line on stdout), so bench/types.ts can interleave its measurements with ciphervec's.

    faiss_types.py BASE QUERY GT --nlist N --iters N --seed N [--queries N]

Requests: {"op": "quantizer", "threads": T}   k-means once; every IVF kind is built on it
          {"op": "build", "kind": K, "threads": T}
              K: "flat" (IndexIVFFlat), "sq8", "fp16" (IndexIVFScalarQuantizer), "pq" (IndexIVFPQ
              with d/2 or 48 sub-quantizers of 8 bits, wrapped in IndexRefineFlat, k_factor 4),
              "hnsw" (IndexHNSWFlat M 32), "usearch" (usearch HNSW, connectivity 16, f32)
              reply: seconds (train of codes + add, or graph build) and bytes (serialized size,
              or usearch's memory_usage); the built index is the one searched next
          {"op": "batch", "param": P, "threads": T}   P: nprobe (IVF) or efSearch / expansion (HNSW)
          {"op": "single", "param": P, "n": N}
"""

import time

import faiss
import numpy as np
from usearch.index import Index as UsearchIndex

from faiss_ivf import load_data, log, recall_at_10, serve


def pq_sub_quantizers(d):
    """The sub-quantizer count: 48 for 384-d (the issue's IVFPQ48), else 2-d sub-vectors when d is
    even (FAISS needs d divisible by it), else one per dimension."""
    if d % 48 == 0:
        return 48
    return d // 2 if d % 2 == 0 else d


class Bench:
    OPS = ("quantizer", "build", "batch", "single")

    def __init__(self, a):
        load_data(self, a)
        self.centroids = None
        self.index = None
        self.kind = None
        log(f"base {self.xb.shape}, queries {self.xq.shape}, faiss {faiss.__version__}")

    def quantizer(self, threads):
        faiss.omp_set_num_threads(threads)
        d = self.xb.shape[1]
        km = faiss.Kmeans(d, self.nlist, niter=self.iters, seed=self.seed, max_points_per_centroid=256, verbose=False)
        t0 = time.perf_counter()
        km.train(self.xb)
        self.centroids = km.centroids
        return {"seconds": time.perf_counter() - t0, "version": faiss.__version__}

    def build(self, kind, threads):
        faiss.omp_set_num_threads(threads)
        d = self.xb.shape[1]
        t0 = time.perf_counter()
        if kind == "usearch":
            index = UsearchIndex(ndim=d, metric="l2sq", connectivity=16, dtype="f32")
            index.add(np.arange(len(self.xb), dtype=np.uint64), self.xb, threads=threads)
            seconds = time.perf_counter() - t0
            self.index, self.kind = index, kind
            return {"seconds": seconds, "bytes": int(index.memory_usage)}
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, 32)
            index.add(self.xb)
        else:
            quantizer = faiss.IndexFlatL2(d)
            quantizer.add(self.centroids)
            if kind == "flat":
                index = faiss.IndexIVFFlat(quantizer, d, self.nlist)
            elif kind in ("sq8", "fp16"):
                qt = faiss.ScalarQuantizer.QT_8bit if kind == "sq8" else faiss.ScalarQuantizer.QT_fp16
                index = faiss.IndexIVFScalarQuantizer(quantizer, d, self.nlist, qt)
            elif kind == "pq":
                index = faiss.IndexIVFPQ(quantizer, d, self.nlist, pq_sub_quantizers(d), 8)
            else:
                raise ValueError(f"unknown kind {kind!r}")
            # The quantizer holds the trained centroids: train() only trains the codes.
            index.train(self.xb)
            if kind == "pq":
                self.base = index  # the wrapper does not own it
                index = faiss.IndexRefineFlat(index)
                index.k_factor = 4
            index.add(self.xb)
            self.quantizer = quantizer  # the index does not own it
        seconds = time.perf_counter() - t0
        self.index, self.kind = index, kind
        return {"seconds": seconds, "bytes": int(faiss.serialize_index(index).size)}

    def set_param(self, p):
        if self.kind == "usearch":
            self.index.expansion_search = p
        elif self.kind == "hnsw":
            self.index.hnsw.efSearch = p
        else:
            faiss.extract_index_ivf(self.index).nprobe = p

    def search(self, xq, threads):
        if self.kind == "usearch":
            return self.index.search(xq, 10, threads=threads).keys
        faiss.omp_set_num_threads(threads)
        return self.index.search(xq, 10)[1]

    def batch(self, param, threads):
        self.set_param(param)
        t0 = time.perf_counter()
        ids = self.search(self.xq, threads)
        qps = len(self.xq) / (time.perf_counter() - t0)
        return {"qps": qps, "recall": recall_at_10(ids, self.gt)}

    def single(self, param, n):
        self.set_param(param)
        n = min(n, len(self.xq))
        t0 = time.perf_counter()
        for i in range(n):
            self.search(self.xq[i : i + 1], 1)
        return {"us": (time.perf_counter() - t0) / n * 1e6}


def main():
    serve(Bench)


if __name__ == "__main__":
    main()
