"""Natural images: any folder of class folders (or its zip), Tiny ImageNet, image decoding."""
