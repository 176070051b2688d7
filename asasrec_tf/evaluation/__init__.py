"""Ranking evaluation: ranks of held-out items, HR/NDCG, significance."""
