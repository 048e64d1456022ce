"""CenterCLIP token clustering: KKZ seeds, k-medoids (O(N*K) update), spectral, pooling, sparse sampling, segments."""

import itertools

import pytest
import torch

from visionzoo.core.errors import ConfigError
from visionzoo.methods.vl.centerclip.clustering import (assign_to_medoids, kept_token_fraction, kkz_init, kmedoids,
                                                        segment_cluster, sparse_sampling_indices, spectral_medoids,
                                                        update_medoids, update_medoids_dense)


def _blobs(centres: torch.Tensor, per: int, noise: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Points around each centre, shuffled: (N, D) points and (N,) true cluster ids."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(len(centres)).repeat_interleave(per)
    x = centres[labels] + noise * torch.randn(len(labels), centres.shape[1], generator=g)
    perm = torch.randperm(len(labels), generator=g)
    return x[perm], labels[perm]


def test_kkz_starts_at_the_largest_norm_then_takes_the_farthest_point():
    x = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [5.0, 0.0], [-3.0, 0.0], [4.0, 0.1]]])
    seeds = kkz_init(x, 3)
    # norms: 0, 1, 5, 3, ~4 -> 2; farthest from 5: -3 (8 away) -> 3; then min-dist: 0->3, 1->4, 4.0->~1 -> 1
    assert seeds.tolist() == [[2, 3, 1]]


def test_kkz_is_brute_force_farthest_point_on_random_data():
    x = torch.randn(3, 30, 5, generator=torch.Generator().manual_seed(1))
    seeds = kkz_init(x, 6)
    for b in range(3):
        chosen = [int(x[b].norm(dim=-1).argmax())]
        for _ in range(5):
            d = torch.cdist(x[b], x[b][chosen]).min(dim=1).values
            chosen.append(int(d.argmax()))
        assert seeds[b].tolist() == chosen


def test_one_hot_medoid_update_equals_the_official_dense_update_and_brute_force():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 40, 6, generator=g)
    d = torch.cdist(x, x)
    medoids = kkz_init(x, 5, d)
    assignment = assign_to_medoids(d, medoids)
    ours = update_medoids(d, assignment, 5)
    assert torch.equal(ours, update_medoids_dense(d, assignment, 5))
    for b, c in itertools.product(range(4), range(5)):
        members = (assignment[b] == c).nonzero().flatten()
        best = members[d[b][members][:, members].sum(1).argmin()]
        assert ours[b, c] == best


def test_kmedoids_recovers_separated_clusters_in_a_few_iterations():
    centres = torch.tensor([[0.0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10], [10, 10, 10]])
    x, labels = _blobs(centres, per=12, noise=0.5)
    medoids, iterations = kmedoids(x[None], 5, return_iterations=True)
    assert sorted(labels[medoids[0]].tolist()) == [0, 1, 2, 3, 4]  # one medoid per true cluster
    assert iterations <= 10
    assignment = assign_to_medoids(torch.cdist(x, x)[None], medoids)[0]
    # the found partition equals the true one (up to renaming)
    assert all(len(set(labels[assignment == c].tolist())) == 1 for c in range(5))


def test_kmedoids_never_increases_the_clustering_cost():
    x = torch.randn(2, 60, 4, generator=torch.Generator().manual_seed(3))
    d = torch.cdist(x, x)

    def cost(m):
        return d.gather(2, m[:, None, :].expand(-1, 60, -1)).min(dim=2).values.sum()

    seeds = kkz_init(x, 8, d)
    assert cost(kmedoids(x, 8)) <= cost(seeds) + 1e-5


def test_kmedoids_handles_duplicate_points_without_losing_a_medoid():
    x = torch.zeros(1, 10, 3)
    x[0, 5:] = 1.0
    medoids = kmedoids(x, 4)  # only two distinct points exist
    assert medoids.shape == (1, 4) and medoids.min() >= 0 and medoids.max() < 10


def test_spectral_medoids_cover_well_separated_clusters():
    centres = torch.tensor([[0.0, 0], [8, 0], [0, 8], [8, 8]])
    x, labels = _blobs(centres, per=10, noise=0.3, seed=4)
    medoids = spectral_medoids(x[None], 4)
    assert sorted(labels[medoids[0]].tolist()) == [0, 1, 2, 3]


def test_sparse_sampling_takes_evenly_strided_tokens():
    assert sparse_sampling_indices(10, 4).tolist() == [0, 3, 6, 9]


@pytest.mark.parametrize("mode,kept", [("kmedoids", 5), ("spectral", 5), ("sparse_sampling", 5), ("pooling", 9)])
def test_segment_cluster_shapes_and_cls_average(mode, kept):
    B, T, P, W, S = 2, 6, 9, 8, 3
    x = torch.randn(B * T, 1 + P, W, generator=torch.Generator().manual_seed(5))
    out = segment_cluster(x, T, S, 5, mode)
    assert out.shape == (B * S, 1 + kept, W)
    # segment s of video b averages the CLS tokens of its T/S consecutive frames
    torch.testing.assert_close(out[1, 0], x[2:4, 0].mean(0))
    torch.testing.assert_close(out[4, 0], x[8:10, 0].mean(0))


def test_segment_cluster_keeps_real_tokens_of_its_own_segment_in_original_order():
    B, T, P, W, S, K = 1, 4, 5, 6, 2, 3
    x = torch.randn(B * T, 1 + P, W, generator=torch.Generator().manual_seed(6))
    out = segment_cluster(x, T, S, K, "kmedoids")
    for s in range(S):
        pool = x[s * 2 : s * 2 + 2, 1:].reshape(-1, W)  # this segment's patch tokens in order
        positions = [int((pool - tok).abs().sum(1).argmin()) for tok in out[s, 1:]]
        assert all(torch.equal(pool[p], tok) for p, tok in zip(positions, out[s, 1:]))
        assert positions == sorted(positions)


def test_gradients_flow_through_the_kept_tokens_only():
    x = torch.randn(4, 1 + 6, 5, requires_grad=True)
    out = segment_cluster(x, 4, 1, 3, "kmedoids")
    out.sum().backward()
    patch_grad = x.grad[:, 1:].abs().sum(-1).flatten()
    assert int((patch_grad > 0).sum()) == 3  # three medoid tokens received gradient
    assert torch.all(x.grad[:, 0] == 0.25)  # the CLS mean spreads 1/4 to each frame


def test_segment_cluster_none_is_identity_and_bad_configs_fail():
    x = torch.randn(6, 5, 4)
    assert segment_cluster(x, 6, 3, 2, "none") is x
    with pytest.raises(ConfigError, match="segments"):
        segment_cluster(x, 6, 4, 2, "kmedoids")
    with pytest.raises(ConfigError, match="k=99"):
        segment_cluster(x, 6, 3, 99, "kmedoids")
    with pytest.raises(ConfigError, match="mode"):
        segment_cluster(x, 6, 3, 2, "kmeans")


def test_kept_token_fraction_matches_the_paper_b32_settings():
    assert kept_token_fraction(12, 49, 4, 49, "kmedoids") == pytest.approx(4 * 50 / (12 * 50))
    assert kept_token_fraction(12, 49, 3, 49, "kmedoids") == pytest.approx(0.25)
    assert kept_token_fraction(12, 49, 4, 49, "none") == 1.0
