"""Evaluation: retrieval metrics and the FAISS gallery."""
