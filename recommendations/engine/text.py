"""The local recommender's text features: TF-IDF blocks (smooth or BM25 idf) and Harman's S-stemmer."""

import functools
import re
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize


def fit_tfidf(docs: Sequence[str], *, idf: str = "smooth", **kwargs: object) -> sp.csr_matrix:
    """Fit TF-IDF (sublinear tf, L2-normalised rows) on docs; an all-empty corpus (or one with no usable token)
    gives an empty matrix. idf="smooth" is scikit-learn's log((1 + N) / (1 + df)) + 1; idf="bm25" is
    log(1 + (N - df + 0.5) / (df + 0.5)), positive even for a word in every document."""
    if idf not in ("smooth", "bm25"):
        raise ValueError(f"unknown idf {idf!r}")
    if not any(doc.strip() for doc in docs):
        return sp.csr_matrix((len(docs), 0), dtype=np.float32)
    bm25 = idf == "bm25"
    vectorizer = TfidfVectorizer(
        sublinear_tf=True,
        strip_accents="unicode",
        dtype=np.float32,
        use_idf=not bm25,
        norm=None if bm25 else "l2",
        **kwargs,
    )
    try:
        matrix = sp.csr_matrix(vectorizer.fit_transform(docs))
    except ValueError:  # "empty vocabulary": only stop words or punctuation
        return sp.csr_matrix((len(docs), 0), dtype=np.float32)
    if bm25:
        n = matrix.shape[0]
        df = np.bincount(matrix.indices, minlength=matrix.shape[1]).astype(np.float64)
        weights = np.log1p((n - df + 0.5) / (df + 0.5))
        matrix = sp.csr_matrix(matrix @ sp.diags(weights.astype(np.float32)))
    return sp.csr_matrix(normalize(matrix), dtype=np.float32)


@functools.lru_cache(maxsize=1 << 16)
def s_stem(word: str) -> str:
    """Harman's S-stemmer (1991) for a lower-case word: "-ies" -> "-y" (not after "e" or "a"), "-es" -> "-e"
    (not after "a", "e" or "o"), else a final "s" is dropped (not after "u" or "s"). "batteries" -> "battery",
    "envelopes" -> "envelope", "pens" -> "pen", "shoes" -> "shoe"; "glass" and "status" stay. Conservative by
    design ("boxes" -> "boxe" does not meet "box"), so it rarely merges unrelated words."""
    if word.endswith("ies") and not word.endswith(("eies", "aies")) and len(word) > 3:
        return word[:-3] + "y"
    if word.endswith("es") and not word.endswith(("aes", "ees", "oes")) and len(word) > 3:
        return word[:-1]
    if word.endswith("s") and not word.endswith(("us", "ss")) and len(word) > 2:
        return word[:-1]
    return word


def stem_text(text: str, token_pattern: "re.Pattern[str]") -> str:
    """Lower-case text with every token matched by token_pattern replaced by its S-stem."""
    return token_pattern.sub(lambda m: s_stem(m.group(0)), text.lower())


# ---------------------------------------------------------------- vectorised counting (the build's fast path)
#
# fit_tfidf above is scikit-learn's TfidfVectorizer: per document Python n-gram generation and a dict lookup per
# n-gram. char_wb_tfidf and word_tfidf give the same matrices (up to the order of the columns, which no cosine
# reads) from numpy passes over the concatenated code points of the whole corpus: every n-gram or word gets a
# 64-bit key (exact for n-grams over an alphabet of up to 7130 code points; else, and for words, a polynomial hash
# modulo 2^64 mixed with the length, where two distinct strings collide with odds of about 2^-64), keys are
# numbered through an open hash table (a key that loses its slot is numbered separately, so no two keys share a
# column), and the counts are one sparse matrix construction.

# The token pattern word_tfidf implements (scikit-learn's default).
WORD_PATTERN = r"(?u)\b\w\w+\b"
_SLOT_BITS = 20
_MIX = np.uint64(0x9E3779B97F4A7C15)
_POLY = 0x100000001B3
_CODE_POINTS = 0x110000


def _code_point_flags(points: np.ndarray, predicate: Callable[[str], bool]) -> np.ndarray:
    """predicate(chr(c)) for every code point c of points (evaluated once per distinct code point)."""
    present = np.zeros(_CODE_POINTS, dtype=bool)
    present[points] = True
    distinct = np.flatnonzero(present)
    table = np.zeros(_CODE_POINTS, dtype=bool)
    table[distinct] = [predicate(chr(c)) for c in distinct.tolist()]
    return table[points]


def _preprocess(docs: Sequence[str]) -> tuple[str, np.ndarray, np.ndarray]:
    """scikit-learn's preprocessing (lower-case, then strip_accents="unicode") of every document, concatenated
    as " " + doc0 + " " + doc1 + ... + " ": the text, its code points and each position's document."""
    from sklearn.feature_extraction.text import strip_accents_unicode

    cleaned = [strip_accents_unicode(doc.lower()) for doc in docs]
    lengths = np.fromiter(map(len, cleaned), dtype=np.int64, count=len(cleaned))
    text = " " + " ".join(cleaned) + " "
    points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    doc_of = np.zeros(points.size, dtype=np.int32)
    doc_of[np.cumsum(lengths + 1)[:-1]] = 1  # the space before a document belongs to it
    return text, points, np.cumsum(doc_of)


def _number_keys(keys: np.ndarray) -> np.ndarray:
    """A dense id (0..distinct-1) for every key, equal ids exactly for equal keys.

    Rounds of an open hash table small enough for the cache: each round one key wins each slot and the keys that
    lost theirs go to the next round (with another hash), so distinct keys never share an id."""
    ids = np.empty(keys.size, dtype=np.int64)
    pending: np.ndarray | None = None  # None: every key (the first round)
    offset = 0
    for round_ in range(64):
        part = keys if pending is None else keys[pending]
        if part.size == 0:
            break
        bits = int(min(_SLOT_BITS, max(8, part.size.bit_length())))
        multiplier = np.uint64(int(_MIX) * (2 * round_ + 1) % (1 << 64))
        slots = ((part * multiplier) >> np.uint64(64 - bits)).astype(np.int64)
        table = np.zeros(1 << bits, dtype=np.uint64)
        table[slots] = part
        won = table[slots] == part
        slots += offset
        if pending is None:
            ids[:] = slots
            pending = np.flatnonzero(~won)
        else:
            ids[pending[won]] = slots[won]
            pending = pending[~won]
        offset += 1 << bits
    else:  # pragma: no cover - 64 rounds cannot all collide
        raise AssertionError("key numbering did not converge")
    present = np.zeros(offset, dtype=np.int64)
    present[ids] = 1
    return np.asarray((np.cumsum(present) - 1)[ids], dtype=np.int64)


def _tfidf_counts(
    doc_ids: np.ndarray, term_ids: np.ndarray, *, n_docs: int, idf: str, max_features: int | None
) -> sp.csr_matrix:
    """fit_tfidf's weighting (sublinear tf, smooth or BM25 idf, L2-normalised rows) of the docs x terms counts of
    the (document, term) occurrences; with max_features only the most frequent terms are kept (ties: lower id)."""
    if idf not in ("smooth", "bm25"):
        raise ValueError(f"unknown idf {idf!r}")
    n_terms = int(term_ids.max()) + 1 if term_ids.size else 0
    if n_terms == 0:
        return sp.csr_matrix((n_docs, 0), dtype=np.float32)
    if max_features is not None and n_terms > max_features:
        kept = np.lexsort((np.arange(n_terms), -np.bincount(term_ids, minlength=n_terms)))[:max_features]
        remap = np.full(n_terms, -1, dtype=np.int64)
        remap[np.sort(kept)] = np.arange(kept.size)
        term_ids = remap[term_ids]
        keep = term_ids >= 0
        doc_ids, term_ids, n_terms = doc_ids[keep], term_ids[keep], kept.size
    counts = sp.csr_matrix(
        (np.ones(term_ids.size, dtype=np.float32), (doc_ids, term_ids)), shape=(n_docs, n_terms), dtype=np.float32
    )
    counts.sum_duplicates()
    return _weight(counts, idf)


def _weight(counts: sp.csr_matrix, idf: str) -> sp.csr_matrix:
    """fit_tfidf's weighting of a docs x terms count matrix (canonical CSR)."""
    tf = counts  # (owned by the caller: weighted in place)
    tf.data = np.log(tf.data) + np.float32(1)
    n_docs = tf.shape[0]
    df = np.bincount(tf.indices, minlength=tf.shape[1]).astype(np.float64)
    weights = np.log1p((n_docs - df + 0.5) / (df + 0.5)) if idf == "bm25" else np.log((1 + n_docs) / (1 + df)) + 1
    tf.data *= weights.astype(np.float32)[tf.indices]
    return sp.csr_matrix(normalize(tf), dtype=np.float32)


def split_tfidf(docs: Sequence[str], *, idf: str = "smooth") -> sp.csr_matrix:
    """fit_tfidf(docs, idf=idf, analyzer=str.split): the whitespace-separated tokens as they are, each distinct
    document tokenised once (catalog category paths repeat)."""
    if idf not in ("smooth", "bm25"):
        raise ValueError(f"unknown idf {idf!r}")
    distinct: dict[str, int] = {}
    inverse = np.fromiter((distinct.setdefault(doc, len(distinct)) for doc in docs), dtype=np.int64, count=len(docs))
    vocabulary: dict[str, int] = {}
    doc_ids: list[int] = []
    term_ids: list[int] = []
    for i, doc in enumerate(distinct):
        for token in doc.split():
            term_ids.append(vocabulary.setdefault(token, len(vocabulary)))
            doc_ids.append(i)
    if not vocabulary:
        return sp.csr_matrix((len(docs), 0), dtype=np.float32)
    counts = sp.csr_matrix(
        (np.ones(len(term_ids), dtype=np.float32), (doc_ids, term_ids)),
        shape=(len(distinct), len(vocabulary)),
        dtype=np.float32,
    )
    counts.sum_duplicates()
    return _weight(sp.csr_matrix(counts[inverse]), idf)


def char_wb_tfidf(
    docs: Sequence[str], *, idf: str = "smooth", ngram_range: tuple[int, int] = (3, 5), max_features: int | None = None
) -> sp.csr_matrix:
    """fit_tfidf(docs, idf=idf, analyzer="char_wb", ngram_range=ngram_range, max_features=max_features), vectorised.

    scikit-learn's char_wb n-grams (3 <= n) of a document are those of each word padded with a space either side
    (a padded word is at least 3 long), i.e. exactly the windows of " " + the words + " " with no whitespace
    strictly inside them."""
    low, high = ngram_range
    if not low == 3 <= high:  # below 3 a padding space is an n-gram; above, short words count whole
        raise ValueError(f"char_wb_tfidf needs min_n == 3 <= max_n, not {ngram_range!r}")
    _, points, doc_of = _preprocess(docs)
    space = _code_point_flags(points, str.isspace)
    present = np.zeros(_CODE_POINTS, dtype=np.uint64)
    present[points] = 1
    base = int(present.sum()) + 1
    codes = np.cumsum(present)[np.where(space, 32, points)]  # 1..alphabet, every space one code
    multiplier = np.uint64(base if base**high < 1 << 64 else _POLY)
    hashed = base**high >= 1 << 64
    doc_parts, key_parts = [], []
    key, inner = codes, np.zeros(points.size, dtype=bool)
    for n in range(2, min(high, points.size) + 1):
        windows = points.size - n + 1
        # key / inner: the n-gram starting at each position, and whether whitespace lies strictly inside it.
        key = key[:windows] * multiplier + codes[n - 1 :]
        if n > 2:
            inner = inner[:windows] | space[n - 2 : n - 2 + windows]
        if n < low:
            continue
        valid = np.flatnonzero(~inner[:windows])
        key_parts.append(key[valid] ^ np.uint64(n << 59) if hashed else key[valid])
        doc_parts.append(doc_of[valid + 1])
    if not key_parts:
        return sp.csr_matrix((len(docs), 0), dtype=np.float32)
    term_ids = _number_keys(np.concatenate(key_parts))
    return _tfidf_counts(np.concatenate(doc_parts), term_ids, n_docs=len(docs), idf=idf, max_features=max_features)


def _is_word_character(character: str) -> bool:
    """Whether the regex \\w matches the character (str.isalnum() or "_")."""
    return character.isalnum() or character == "_"


def word_tfidf(
    docs: Sequence[str], *, idf: str = "smooth", stem: bool = False, max_features: int | None = None
) -> sp.csr_matrix:
    """fit_tfidf(docs, idf=idf, max_features=max_features) with the token pattern WORD_PATTERN,
    vectorised; stem=True replaces every word by its s_stem first (as fit_tfidf of stem_text(doc) does)."""
    text, points, doc_of = _preprocess(docs)
    word = _code_point_flags(points, _is_word_character)
    edges = np.flatnonzero(np.diff(word.astype(np.int8)))  # word runs: (edges[2i], edges[2i + 1]] (text ends in " ")
    starts, stops = edges[0::2] + 1, edges[1::2] + 1
    long = stops - starts >= 2
    starts, stops = starts[long], stops[long]
    if starts.size == 0:
        return sp.csr_matrix((len(docs), 0), dtype=np.float32)
    # Polynomial prefix hashes: prefix[i] = sum_{j < i} c_j P^(i-1-j), via the inverse of P (odd) modulo 2^64.
    size = points.size
    powers = np.cumprod(np.full(size + 1, _POLY, dtype=np.uint64))
    powers = np.concatenate([[np.uint64(1)], powers[:-1]])
    inverse = np.cumprod(np.full(size, pow(_POLY, -1, 1 << 64), dtype=np.uint64))
    prefix = np.concatenate([[np.uint64(0)], np.cumsum(points.astype(np.uint64) * inverse)]) * powers
    keys = prefix[stops] - prefix[starts] * powers[stops - starts]
    keys ^= (stops - starts).astype(np.uint64) << np.uint64(56)
    ids = _number_keys(keys)
    first = np.zeros(int(ids.max()) + 1, dtype=np.int64)
    first[ids[::-1]] = np.arange(ids.size - 1, -1, -1)  # one occurrence of every word
    words = [text[a:b] for a, b in zip(starts[first].tolist(), stops[first].tolist(), strict=True)]
    if stem:
        numbered: dict[str, int] = {}
        ids = np.array([numbered.setdefault(s_stem(w), len(numbered)) for w in words], dtype=np.int64)[ids]
    return _tfidf_counts(doc_of[starts], ids, n_docs=len(docs), idf=idf, max_features=max_features)
