"""Omniglot: the zips or folders on disk (or TFDS), the alphabet splits, the drawing decoder.

The episode entry point is `tfmeta.data.omniglot` (a function: it shadows this package's name
on `tfmeta.data`, so import the modules here as `from tfmeta.data.omniglot import source`).
"""
