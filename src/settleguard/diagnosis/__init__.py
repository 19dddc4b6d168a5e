"""Diagnosing settlement failures: which category of shared/design/failure-taxonomy.md a failed,
returned or unclear payout, card check or POS transaction falls in, whether to retry, who must act and
what they should do, in Chinese and English (docs/diagnosis.md).

``classify(scheme, code, message)`` is pure after the knowledge base is loaded (on first use) and
caches answers by the raw triple."""

from __future__ import annotations

from functools import lru_cache

from settleguard.diagnosis.classifier import Classifier, UnknownScheme
from settleguard.diagnosis.kb import CODE_SCHEMES, KnowledgeBase, KnowledgeBaseError, load
from settleguard.diagnosis.model import Category, Decision, Diagnosis, Explanation, Owner, Rule, Stage

# The code sets the classifier understands; free text needs no scheme (or "text").
SCHEMES: tuple[str, ...] = CODE_SCHEMES

__all__ = ["SCHEMES", "Category", "Classifier", "Decision", "Diagnosis", "Explanation", "KnowledgeBase",
           "KnowledgeBaseError", "Owner", "Rule", "Stage", "UnknownScheme", "classify", "classifier",
           "knowledge_base"]


@lru_cache(maxsize=1)
def knowledge_base() -> KnowledgeBase:
    """The packaged knowledge base, loaded and validated once."""
    return load()


@lru_cache(maxsize=1)
def classifier() -> Classifier:
    return Classifier(knowledge_base())


@lru_cache(maxsize=1 << 16)
def classify(scheme: str | None, code: str | None, message: str | None) -> Diagnosis:
    """Diagnose one failure. ``scheme`` is one of SCHEMES (or None / "text"); ``code`` and ``message``
    are what the bank or channel returned (either may be None). Raises UnknownScheme for a scheme
    name the classifier does not know. Repeated inputs are answered from an LRU cache."""
    return classifier().classify(scheme, code, message)
