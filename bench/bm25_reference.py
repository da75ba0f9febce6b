"""Reference BM25 for bench/text.ts (run by it in bench/.venv; pip install rank-bm25==0.2.2
snowballstemmer==2.2.0: the Snowball English of rust-stemmers 1.2.0, word for word on this corpus;
snowballstemmer 3.x stems 157 of its 80,518 words differently).

    bm25_reference.py DOCS QUERIES OURS OUT [--k1 1.2] [--b 0.75]

DOCS: JSON [[id, contents, title], ...]; QUERIES: JSON [text, ...]; OURS: JSON, per query the
[[id, score], ...] ciphervec returned. Writes OUT (JSON, see `Reference` in bench/text.ts):

- `own`: per query the top 10 [[id, score]] of ciphervec's own formula written out here
  independently (per field: idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avglen)), idf =
  ln(1 + (N - df + 0.5) / (df + 0.5)), summed over the query's terms, a repeated term each time,
  and over the fields contents and title; ties by id), with k1 rounded to float32 as ciphervec
  stores it; `ownOfOurs`: its score of each of ciphervec's results.
- `okapi`: per query the top 10 of rank_bm25's BM25Okapi as it is (one object per field, their
  get_scores summed), among the documents holding a query term.
- `rankBm25OwnIdfDiff`: rank_bm25's scoring with our idf swapped in (a subclass) against `own`.

The tokens are ciphervec's analyzer (crates/ciphervec-core/src/meta/text/analyzer.rs): split on
every character that is not alphanumeric (Rust's char::is_alphanumeric; str.isalnum here, the
same on this all-ASCII corpus), lowercase a word holding an uppercase letter, drop Lucene's 33
English stopwords, stem with Snowball English (Porter2).
"""

import argparse
import json
import math
import sys
import time

import numpy as np
import snowballstemmer
from rank_bm25 import BM25Okapi

STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then "
    "there these they this to was will with".split()
)
_stemmer = snowballstemmer.stemmer("english")
_stems = {}


def terms(text):
    out = []
    for word in "".join(c if c.isalnum() else " " for c in text).split():
        if any(c.isupper() for c in word):
            word = word.lower()
        if word in STOPWORDS:
            continue
        s = _stems.get(word)
        if s is None:
            s = _stems[word] = _stemmer.stemWord(word)
        out.append(s)
    return out


class Field:
    """One field's inverted index, for the independent own-formula scores."""

    def __init__(self, docs):
        self.postings = {}  # term -> {doc: tf}
        self.lens = []
        for d, toks in enumerate(docs):
            self.lens.append(len(toks))
            for t in toks:
                p = self.postings.setdefault(t, {})
                p[d] = p.get(d, 0) + 1
        self.n = len(docs)
        self.avg = sum(self.lens) / self.n

    def add_scores(self, query, scores, k1, b):
        for t in query:
            p = self.postings.get(t)
            if not p:
                continue
            df = len(p)
            idf = math.log(1.0 + (self.n - df + 0.5) / (df + 0.5))
            for d, tf in p.items():
                part = idf * tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * self.lens[d] / self.avg))
                scores[d] = scores.get(d, 0.0) + part


class OwnIdf(BM25Okapi):
    """rank_bm25's BM25Okapi with ciphervec's (Lucene's) idf, never negative, no floor."""

    def _calc_idf(self, nd):
        for word, freq in nd.items():
            self.idf[word] = math.log(1.0 + (self.corpus_size - freq + 0.5) / (freq + 0.5))


def top10(ids, pairs):
    return sorted(pairs, key=lambda p: (-p[1], ids[p[0]]))[:10]


def main():
    ap = argparse.ArgumentParser()
    for a in ("docs", "queries", "ours", "out"):
        ap.add_argument(a)
    ap.add_argument("--k1", type=float, default=1.2)
    ap.add_argument("--b", type=float, default=0.75)
    args = ap.parse_args()
    seconds = {}
    t0 = time.perf_counter()
    docs = json.load(open(args.docs))
    queries = json.load(open(args.queries))
    ours = json.load(open(args.ours))
    ids = [d[0] for d in docs]
    pos = {id_: i for i, id_ in enumerate(ids)}
    fields = {"contents": [terms(d[1]) for d in docs], "title": [terms(d[2]) for d in docs]}
    qterms = [terms(q) for q in queries]
    seconds["tokenize"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    own_fields = [Field(toks) for toks in fields.values()]
    seconds["own index"] = time.perf_counter() - t0
    k1_f32 = float(np.float32(args.k1))  # ciphervec keeps bm25.k1 as f32 (b = 0.75 is exact)

    def own_scores(q, k1):
        scores = {}
        for f in own_fields:  # contents, then title, each term in query order: ciphervec's order
            f.add_scores(q, scores, k1, args.b)
        return scores

    t0 = time.perf_counter()
    own, own_of_ours = [], []
    exact_k1_diff = 0.0
    for q, mine in zip(qterms, ours):
        scores = own_scores(q, k1_f32)
        own.append([[ids[d], s] for d, s in top10(ids, scores.items())])
        own_of_ours.append([scores.get(pos[id_]) for id_, _ in mine])
        exact = own_scores(q, args.k1)
        for id_, score in mine:
            e = exact.get(pos[id_])
            if e is not None:
                exact_k1_diff = max(exact_k1_diff, abs(score - e) / abs(e))
    seconds["own queries"] = time.perf_counter() - t0
    print(f"[reference] own formula: {len(queries)} queries in {seconds['own queries']:.1f} s", file=sys.stderr)

    t0 = time.perf_counter()
    okapi_fields = [BM25Okapi(toks, k1=args.k1, b=args.b) for toks in fields.values()]
    ownidf_fields = [OwnIdf(toks, k1=k1_f32, b=args.b) for toks in fields.values()]
    seconds["rank_bm25 index"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    okapi, rb_diff = [], 0.0
    for qi, q in enumerate(qterms):
        holding = own_scores(q, k1_f32)  # the documents holding a query term
        s = sum(f.get_scores(q) for f in okapi_fields)
        okapi.append([[ids[d], float(s[d])] for d, _ in top10(ids, [(d, float(s[d])) for d in holding])])
        r = sum(f.get_scores(q) for f in ownidf_fields)
        for d, v in holding.items():
            rb_diff = max(rb_diff, abs(float(r[d]) - v))
        if qi % 100 == 99:
            print(f"[reference] rank_bm25: {qi + 1} queries, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    seconds["rank_bm25 queries"] = time.perf_counter() - t0

    stats = {
        name: {"docs": len(toks), "tokens": sum(map(len, toks)), "terms": len(f.postings)}
        for (name, toks), f in zip(fields.items(), own_fields)
    }
    json.dump(
        {
            "own": own,
            "ownOfOurs": own_of_ours,
            "ownExactK1Diff": exact_k1_diff,
            "okapi": okapi,
            "rankBm25OwnIdfDiff": rb_diff,
            "fields": stats,
            "seconds": seconds,
        },
        open(args.out, "w"),
    )


if __name__ == "__main__":
    main()
