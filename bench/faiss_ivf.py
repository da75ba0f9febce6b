"""FAISS IndexIVFFlat baseline for bench/ivf.ts.

Reads the same .fbin/.ibin files as the TypeScript benchmark and trains k-means with the same
parameters. It runs as a server: bench/ivf.ts sends one JSON request per line on stdin and gets
one JSON reply per line on stdout, so it can interleave FAISS and ciphervec measurements and
both see the same load on a shared, noisy machine. Progress goes to stderr.

    faiss_ivf.py BASE QUERY GT --nlist N --iters N --seed N [--queries N]

Requests: {"op": "train", "threads": T}  (the first one builds the index that is searched)
          {"op": "batch", "nprobe": P, "threads": T}
          {"op": "single", "nprobe": P, "n": N}
"""

import argparse
import json
import sys
import time

import faiss
import numpy as np


def read_bin(path, dtype):
    """.fbin/.ibin: little-endian int32 rows, int32 cols, then rows*cols values, row-major."""
    with open(path, "rb") as f:
        rows, cols = np.fromfile(f, dtype="<i4", count=2)
        data = np.fromfile(f, dtype=dtype, count=int(rows) * int(cols))
    return data.reshape(int(rows), int(cols))


def log(*args):
    print("[faiss]", *args, file=sys.stderr, flush=True)


def recall_at_10(found, gt):
    """Mean |found top-10 ∩ true top-10| / 10 over queries."""
    hits = sum(len(set(f[:10].tolist()) & set(g[:10].tolist())) for f, g in zip(found, gt))
    return hits / (10 * len(gt))


def load_data(bench, a):
    """Sets the bench's base vectors, queries (the first `--queries`), ground truth and k-means
    settings from the command line `a`."""
    bench.xb = np.ascontiguousarray(read_bin(a.base, "<f4"))
    bench.xq = np.ascontiguousarray(read_bin(a.query, "<f4"))
    bench.gt = read_bin(a.gt, "<i4")
    if a.queries:
        bench.xq, bench.gt = bench.xq[: a.queries], bench.gt[: a.queries]
    bench.nlist, bench.iters, bench.seed = a.nlist, a.iters, a.seed


class Bench:
    OPS = ("train", "batch", "single")

    def __init__(self, a):
        load_data(self, a)
        self.index = None
        log(f"base {self.xb.shape}, queries {self.xq.shape}, faiss {faiss.__version__}")

    def train(self, threads):
        """k-means through faiss.Kmeans (so kmeans.obj is readable), then IVF on its centroids.

        obj is the sum of squared distances of the training sample to its centroids: the same
        definition as ciphervec's `inertia`.
        """
        faiss.omp_set_num_threads(threads)
        d = self.xb.shape[1]
        km = faiss.Kmeans(d, self.nlist, niter=self.iters, seed=self.seed, max_points_per_centroid=256, verbose=False)
        t0 = time.perf_counter()
        km.train(self.xb)
        train_s = time.perf_counter() - t0
        quantizer = faiss.IndexFlatL2(d)
        quantizer.add(km.centroids)
        index = faiss.IndexIVFFlat(quantizer, d, self.nlist)
        index.is_trained = True  # the quantizer already holds the trained centroids
        t0 = time.perf_counter()
        index.add(self.xb)
        add_s = time.perf_counter() - t0
        if self.index is None:
            self.index = index
            self.batch(16, threads, self.xq[:200])  # warm-up: fault in lists, start OpenMP threads
        stats = km.iteration_stats
        return {
            "version": faiss.__version__,
            "trainSeconds": train_s,
            "addSeconds": add_s,
            "inertia": float(km.obj[-1]),
            "iterations": len(km.obj),
            # FAISS's own timer: the k-means loop without sampling.
            "loopSeconds": stats[-1]["time"] if stats else None,
        }

    def batch(self, nprobe, threads, xq=None):
        """All queries in one search call: QPS and recall@10."""
        xq = self.xq if xq is None else xq
        faiss.omp_set_num_threads(threads)
        self.index.nprobe = nprobe
        t0 = time.perf_counter()
        _, ids = self.index.search(xq, 10)
        qps = len(xq) / (time.perf_counter() - t0)
        return {"qps": qps, "recall": recall_at_10(ids, self.gt[: len(xq)])}

    def single(self, nprobe, n):
        """Sequential one-query searches at 1 thread: mean microseconds per query."""
        faiss.omp_set_num_threads(1)
        self.index.nprobe = nprobe
        n = min(n, len(self.xq))
        t0 = time.perf_counter()
        for i in range(n):
            self.index.search(self.xq[i : i + 1], 10)
        return {"us": (time.perf_counter() - t0) / n * 1e6}


def serve(bench_class):
    """Parses the command line, loads the data into `bench_class` and answers requests."""
    p = argparse.ArgumentParser()
    p.add_argument("base")
    p.add_argument("query")
    p.add_argument("gt")
    p.add_argument("--nlist", type=int, default=1024)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--queries", type=int, default=0, help="0 = all")
    bench = bench_class(p.parse_args())
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        try:
            # A request is {"op": NAME, ...arguments}: the method NAME (one of OPS) called with them.
            req = json.loads(line)
            op = req.pop("op")
            if op not in bench.OPS:
                raise ValueError(f"unknown op {op!r}")
            reply = getattr(bench, op)(**req)
        except Exception as e:  # report to the caller instead of dying mid-run
            reply = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    serve(Bench)
