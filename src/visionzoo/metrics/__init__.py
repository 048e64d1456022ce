"""Metrics shared by methods (k-NN accuracy, WER, BLEU, retrieval R@K, ...)."""
