"""The local recommender's text features: TF-IDF blocks (smooth or BM25 idf) and Harman's S-stemmer."""

import functools
import re
from collections.abc import Sequence

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
