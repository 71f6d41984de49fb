"""Regression tasks with a closed form: the sinusoid."""
