"""Datasets: the arrays .npz format, CIFAR, a synthetic hierarchy, long-tail subsampling (numpy
only), and the torch loaders (gpu_loader, imagefolder), which are NOT imported here so that
`import featgeom.data` never pulls in torch.
"""
from featgeom.data.arrays import SPLITS, class_counts, fine_to_coarse, load_arrays, save_arrays

__all__ = ["SPLITS", "class_counts", "fine_to_coarse", "load_arrays", "save_arrays"]
