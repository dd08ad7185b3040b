"""Infer requests, their stages and the executors that run them."""
