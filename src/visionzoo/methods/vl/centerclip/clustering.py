"""CenterCLIP's token reduction (Zhao et al., SIGIR 2022, §3): cluster the tokens of a video segment and
keep only the cluster centres (medoids), so the remaining transformer blocks see far fewer tokens.

Every function works on a batch of independent point sets ``x`` of shape (B, N, D) and returns
*indices* into N; the caller gathers the kept tokens, so gradients flow through the kept tokens while
the index selection itself is non-differentiable (it runs under ``no_grad`` in fp32).

k-medoids: KKZ initialisation (Katsavounidis et al. 1994) then alternate assignment / medoid update.
The medoid update needs, per cluster k and member i, the summed distance from i to the other members
of k. We compute it for all (i, k) at once as ``D @ one_hot(assignment)`` — an einsum giving a (B, N, K)
table — and take the argmin over members. The official code builds a (B, K, N, N) masked distance
tensor instead: K times the memory and, measured on CPU, ~60x the time for B/32 segments (spec §2g).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from visionzoo.core.errors import ConfigError

ClusterMode = Literal["none", "kmedoids", "spectral", "pooling", "sparse_sampling"]
CLUSTER_MODES = ("none", "kmedoids", "spectral", "pooling", "sparse_sampling")


def kkz_init(x: torch.Tensor, k: int, distances: torch.Tensor | None = None) -> torch.Tensor:
    """KKZ seeds: (B, N, D) -> (B, k) indices.

    The first seed is the point of largest L2 norm; each next one is the point farthest from its nearest
    seed so far. Deterministic, so two implementations pick identical seeds on tie-free data.
    """
    B, N, _ = x.shape
    if not 1 <= k <= N:
        raise ConfigError(f"kkz_init: k={k} must be between 1 and the number of points {N}")
    d = torch.cdist(x, x) if distances is None else distances
    batch = torch.arange(B, device=x.device)
    seeds = torch.empty(B, k, dtype=torch.long, device=x.device)
    seeds[:, 0] = x.norm(dim=-1).argmax(dim=1)
    nearest = d[batch, seeds[:, 0]]  # (B, N): distance of every point to its nearest seed
    for j in range(1, k):  # k steps over clusters, each vectorised over batch and points
        seeds[:, j] = nearest.argmax(dim=1)
        nearest = torch.minimum(nearest, d[batch, seeds[:, j]])
    return seeds


def assign_to_medoids(distances: torch.Tensor, medoids: torch.Tensor) -> torch.Tensor:
    """(B, N, N) distances, (B, K) medoid indices -> (B, N) cluster index of every point (nearest medoid)."""
    to_medoids = distances.gather(2, medoids[:, None, :].expand(-1, distances.shape[1], -1))  # (B, N, K)
    assignment = to_medoids.argmin(dim=2)
    # A medoid always belongs to its own cluster, even when duplicate points tie with another medoid.
    assignment.scatter_(1, medoids, torch.arange(medoids.shape[1], device=medoids.device).expand_as(medoids))
    return assignment


def update_medoids(distances: torch.Tensor, assignment: torch.Tensor, k: int,
                   previous: torch.Tensor | None = None) -> torch.Tensor:
    """The member of each cluster with the least summed distance to its fellow members: (B, k) indices.

    O(N*K) extra memory: ``cost[b, i, c] = sum_j D[b, i, j] * [assignment[b, j] == c]``. A cluster left
    without members (only possible with duplicate seeds) keeps its ``previous`` medoid.
    """
    one_hot = F.one_hot(assignment, k).to(distances.dtype)  # (B, N, K)
    cost = torch.einsum("bij,bjk->bik", distances, one_hot)  # (B, N, K)
    cost = cost.masked_fill(one_hot == 0, torch.inf)  # only members may become a cluster's medoid
    medoids = cost.argmin(dim=1)
    if previous is not None:
        medoids = torch.where(one_hot.sum(dim=1) > 0, medoids, previous)
    return medoids


def kmedoids(
    x: torch.Tensor,
    k: int,
    max_iter: int = 100,
    tol: float = 1e-6,
    p: float = 2.0,
    return_iterations: bool = False,
):
    """k-medoids with KKZ seeds: (B, N, D) points -> (B, k) medoid indices (each a member of x).

    Stops when the mean (over the batch) summed medoid shift drops below ``tol`` or after ``max_iter``
    updates. ``p`` is the Minkowski norm of the distance (the paper uses 2; some configs 1).
    """
    with torch.no_grad():
        x = x.detach().float()
        distances = torch.cdist(x, x, p=p)  # (B, N, N)
        medoids = kkz_init(x, k, distances)
        batch = torch.arange(x.shape[0], device=x.device)[:, None]
        iterations = 0
        for iterations in range(1, max_iter + 1):
            assignment = assign_to_medoids(distances, medoids)
            new = update_medoids(distances, assignment, k, previous=medoids)
            shift = (x[batch, new] - x[batch, medoids]).norm(dim=-1).sum(dim=1).mean()
            medoids = new
            if shift < tol:
                break
    return (medoids, iterations) if return_iterations else medoids


def update_medoids_dense(distances: torch.Tensor, assignment: torch.Tensor, k: int) -> torch.Tensor:
    """Reference medoid update through a (B, K, N, N) masked tensor, as the official code computes it.

    Kept for tests and the benchmark only: it must agree with :func:`update_medoids`.
    """
    member = F.one_hot(assignment, k).permute(0, 2, 1).to(distances.dtype)  # (B, K, N)
    pair = member[:, :, :, None] * member[:, :, None, :]  # (B, K, N, N): both points in cluster k
    cost = (distances[:, None] * pair).sum(-1)  # (B, K, N)
    return cost.masked_fill(member == 0, torch.inf).argmin(dim=2)


def spectral_medoids(x: torch.Tensor, k: int, sigma: float = 2.0, max_iter: int = 100, tol: float = 1e-6) -> torch.Tensor:
    """Spectral clustering, then k-medoids in the spectral embedding: (B, N, D) -> (B, k) indices into N.

    Heat-kernel affinity W = exp(-||xi - xj||^2 / (2 sigma^2)), symmetric normalised Laplacian
    L = I - D^-1/2 W D^-1/2; the eigenvectors of its k smallest eigenvalues, row-normalised and sign
    corrected (Bro et al. 2008), are the points clustered; the medoid indices map back to the tokens.
    """
    with torch.no_grad():
        x = x.detach().float()
        affinity = torch.exp(-torch.cdist(x, x).square() / (2 * sigma**2))  # (B, N, N)
        inv_sqrt_degree = affinity.sum(-1).clamp_min(1e-12).rsqrt()
        laplacian = -inv_sqrt_degree[:, :, None] * affinity * inv_sqrt_degree[:, None, :]
        laplacian.diagonal(dim1=1, dim2=2).add_(1.0)
        _, vectors = torch.linalg.eigh(laplacian)  # eigenvalues ascending
        embedding = vectors[..., :k]  # (B, N, k)
        # Sign correction: an eigenvector's sign is arbitrary; orient it so most of its energy is positive.
        energy_sign = torch.sign((embedding.sign() * embedding.square()).sum(dim=1, keepdim=True))
        embedding = embedding * torch.where(energy_sign == 0, 1.0, energy_sign)
        embedding = F.normalize(embedding, dim=-1)
        return kmedoids(embedding, k, max_iter=max_iter, tol=tol)


def sparse_sampling_indices(n: int, k: int, device=None) -> torch.Tensor:
    """k evenly strided indices of n (the paper's cheap baseline): (k,)."""
    return torch.linspace(0, n - 1, k, device=device).round().long()


def segment_cluster(
    x: torch.Tensor,
    frames: int,
    segments: int,
    k: int,
    mode: ClusterMode = "kmedoids",
    sigma: float = 2.0,
    max_iter: int = 100,
    tol: float = 1e-6,
    distance_p: float = 2.0,
) -> torch.Tensor:
    """Multi-segment token clustering (paper §3.2): (B*T, 1+P, W) frame tokens -> (B*S, 1+K', W).

    The T frames of a video are split into S consecutive segments. Per segment the T/S frame CLS tokens
    are averaged into one CLS, and its T/S*P patch tokens are reduced to K' tokens:
    ``kmedoids`` / ``spectral`` keep K medoid tokens in their original order, ``sparse_sampling`` keeps K
    evenly strided tokens, ``pooling`` averages the frames token-wise (K' = P). Kept tokens are the
    tokens themselves (no averaging), so there are no new parameters.
    """
    if mode not in CLUSTER_MODES:
        raise ConfigError(f"cluster mode {mode!r}: expected one of {CLUSTER_MODES}")
    if mode == "none":
        return x
    bt, n, w = x.shape
    if bt % frames:
        raise ValueError(f"segment_cluster: {bt} frame sequences are not a multiple of {frames} frames per video")
    if frames % segments:
        raise ConfigError(f"cluster segments: {frames} frames cannot be split into {segments} equal segments")
    per_segment = frames // segments
    x = x.reshape(bt // frames * segments, per_segment, n, w)  # (B*S, T/S, 1+P, W)
    cls = x[:, :, 0].mean(dim=1, keepdim=True)  # (B*S, 1, W)
    if mode == "pooling":
        return torch.cat([cls, x[:, :, 1:].mean(dim=1)], dim=1)
    patches = x[:, :, 1:].reshape(x.shape[0], per_segment * (n - 1), w)  # (B*S, T/S*P, W)
    if not 1 <= k <= patches.shape[1]:
        raise ConfigError(f"cluster k={k}: expected 1..{patches.shape[1]} (tokens per segment)")
    if mode == "sparse_sampling":
        keep = sparse_sampling_indices(patches.shape[1], k, x.device).expand(patches.shape[0], -1)
    elif mode == "kmedoids":
        keep = kmedoids(patches, k, max_iter=max_iter, tol=tol, p=distance_p)
    else:
        keep = spectral_medoids(patches, k, sigma=sigma, max_iter=max_iter, tol=tol)
    keep = keep.sort(dim=1).values  # original token order (the official id_sort)
    kept = patches.gather(1, keep[:, :, None].expand(-1, -1, w))
    return torch.cat([cls, kept], dim=1)


def kept_token_fraction(frames: int, patches: int, segments: int, k: int, mode: ClusterMode) -> float:
    """Tokens after clustering / tokens before, per video: S*(1+K) / (T*(1+P))."""
    if mode == "none":
        return 1.0
    kept = patches if mode == "pooling" else k
    return segments * (1 + kept) / (frames * (1 + patches))
