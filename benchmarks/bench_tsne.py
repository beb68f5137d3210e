"""Time openTSNE against scikit-learn's TSNE on the same PCA-50 input (decides `tsne_embed`'s default backend).

Usage: .venv/bin/python benchmarks/bench_tsne.py [--sizes 2000 5000] [--threads 2] [--dims 64]

Data: Gaussian blobs (20 classes, 64-d), reduced once with PCA to 50 dims; only the t-SNE fit is timed. Each backend
runs with its own defaults (openTSNE: 250 + 500 iterations, Barnes-Hut below 10k points / FFT above; sklearn: 1000
iterations Barnes-Hut), since those are what the pipeline would run. Thread pools are pinned before numpy loads,
as openTSNE's docs advise (BLAS/OpenMP otherwise ignore n_jobs).
"""
import argparse
import os
import platform
import time


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 5000], help="numbers of points")
    parser.add_argument("--dims", type=int, default=64, help="input dimension before PCA")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for both backends")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def pin_threads(threads):
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[name] = str(threads)


def blobs_pca50(n_points, dims, seed):
    import numpy as np
    from sklearn.decomposition import PCA
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 20, n_points)
    X = rng.normal(size=(20, dims))[labels] * 3 + rng.normal(size=(n_points, dims))
    return PCA(n_components=50, random_state=seed).fit_transform(X)


def time_backend(backend, reduced, threads, seed):
    import openTSNE
    from sklearn.manifold import TSNE
    started = time.perf_counter()
    if backend == "opentsne":
        openTSNE.TSNE(n_jobs=threads, random_state=seed).fit(reduced)
    else:
        TSNE(init="pca", learning_rate="auto", n_jobs=threads, random_state=seed).fit_transform(reduced)
    return time.perf_counter() - started


def main():
    args = parse_args()
    pin_threads(args.threads)
    import openTSNE
    import sklearn
    print(f"# {platform.processor() or platform.machine()}, {args.threads} threads, "
          f"openTSNE {openTSNE.__version__}, scikit-learn {sklearn.__version__}")
    print(f"{'points':>7}  {'backend':<9} {'seconds':>8}")
    for n_points in args.sizes:
        reduced = blobs_pca50(n_points, args.dims, args.seed)
        for backend in ("opentsne", "sklearn"):
            seconds = time_backend(backend, reduced, args.threads, args.seed)
            print(f"{n_points:>7}  {backend:<9} {seconds:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
