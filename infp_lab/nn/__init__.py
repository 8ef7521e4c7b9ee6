"""Shared neural-network building blocks."""
