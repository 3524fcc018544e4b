"""Retrieval: nearest-item search over model vectors (exact and FAISS), behind one interface."""

from shopflow.retrieval.index import ExactIndex, FaissConfig, FaissIndex, ItemIndex

__all__ = ["ExactIndex", "FaissConfig", "FaissIndex", "ItemIndex"]
