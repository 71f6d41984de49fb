"""The TFDS few-shot benchmarks: mini-ImageNet, CIFAR-FS, FC100, CUB, and their class lists."""
