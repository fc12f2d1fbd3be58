"""Environments written as tensor programs, so a whole batch of them steps in a few kernels."""
