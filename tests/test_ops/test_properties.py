"""Property-based tests (hypothesis) of the pure functions in mmext.ops: encode/decode adjointness, the
box fast path, loss bounds, point-selection counts and normalisation invariants.

Hypothesis draws sizes, parameters and a seed; the tensors come from a torch generator with that seed,
so a failure shrinks to small sizes and replays exactly.
"""
import math
import os

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmext.ops import (intersect_decode, intersect_encode, iou_encode, net2vec_loss, object_context,
                       pixel_region_relation, point_sample, point_uncertainty, scatter_point_logits,
                       soft_object_regions, spatial_gather, training_point_counts,
                       uncertain_point_coords_with_randomness, uncertain_point_indices_on_grid)
from mmext.ops.boundary_iou import boundary_intersect_and_union, class_boundary_iou, inner_boundary
from mmext.ops.directional import (ema_update_means, means_from_sums, modified_sigmoid,
                                   modified_sigmoid_logit, unit_embeddings)

# Modest example counts keep the module at a few seconds on 2 cores. Locally every run draws new
# examples; CI (CI=true) replays a fixed set, so that its result does not depend on luck.
PROPERTY = settings(max_examples=40, deadline=None, derandomize=bool(os.environ.get('CI')))
SEEDS = st.integers(0, 2**31 - 1)
UNIT = st.floats(0.0, 1.0)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


@st.composite
def masks_and_kernels(draw):
    """(B, H, W, kh, kw) with odd, even and rectangular kernels no larger than the mask."""
    kh, kw = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    return draw(st.integers(1, 2)), draw(st.integers(kh, 11)), draw(st.integers(kw, 11)), kh, kw


def _proto(kh, kw, gen):
    """A random non-negative proto shape with some zeros (asymmetric), never all zero."""
    proto = torch.rand(kh, kw, generator=gen) * (torch.rand(kh, kw, generator=gen) > 0.3)
    proto.view(-1)[torch.randint(kh * kw, (1, ), generator=gen)] = 1.0
    return proto


# -- IoU encoding ------------------------------------------------------------------------------------

@PROPERTY
@given(sizes=masks_and_kernels(), seed=SEEDS, box=st.booleans(), binary=st.booleans())
def test_decoder_is_the_adjoint_of_the_encoder(sizes, seed, box, binary):
    # <Enc_none(M), E> = sum(P) * <M, Dec(E)>
    batch, height, width, kh, kw = sizes
    gen = _gen(seed)
    masks = torch.rand(batch, 1, height, width, generator=gen)
    masks = masks.round() if binary else masks
    encoding = torch.rand(batch, 1, height, width, generator=gen)
    proto = torch.ones(kh, kw) if box else _proto(kh, kw, gen)
    shape = dict(kernel_size=(kh, kw)) if box else dict(proto_shape=proto)
    lhs = (intersect_encode(masks, normalize_by='none', **shape) * encoding).sum()
    rhs = proto.sum() * (masks * intersect_decode(encoding, **shape)).sum()
    torch.testing.assert_close(lhs, rhs, rtol=1e-5, atol=1e-5)


@PROPERTY
@given(sizes=masks_and_kernels(), seed=SEEDS, binary=st.booleans())
def test_box_fast_path_equals_the_direct_convolution(sizes, seed, binary):
    batch, height, width, kh, kw = sizes
    masks = torch.rand(batch, 1, height, width, generator=_gen(seed))
    masks = masks.round() if binary else masks
    box, conv = dict(kernel_size=(kh, kw)), dict(proto_shape=torch.ones(kh, kw))
    for normalize_by in ('proto_shape', 'target', 'none'):
        torch.testing.assert_close(intersect_encode(masks, normalize_by=normalize_by, **box),
                                   intersect_encode(masks, normalize_by=normalize_by, **conv),
                                   rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(iou_encode(masks, **box), iou_encode(masks, **conv), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(intersect_decode(masks, **box), intersect_decode(masks, **conv),
                               rtol=1e-5, atol=1e-6)


@PROPERTY
@given(sizes=masks_and_kernels(), seed=SEEDS)
def test_iou_of_binary_masks_lies_in_0_1(sizes, seed):
    batch, height, width, kh, kw = sizes
    masks = torch.rand(batch, 1, height, width, generator=_gen(seed)).round()
    iou = iou_encode(masks, kernel_size=(kh, kw))
    assert torch.isfinite(iou).all() and (iou >= 0).all() and (iou <= 1 + 1e-6).all()


# -- Net2Vec loss ------------------------------------------------------------------------------------

@st.composite
def net2vec_inputs(draw):
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=4)))
    return shape, draw(SEEDS), draw(UNIT), draw(st.floats(-0.5, 1.5))


def _outputs_and_targets(shape, seed):
    gen = _gen(seed)
    outputs = torch.rand(shape, generator=gen)
    # Also the extremes o = 0 and o = 1, where the bounds are attained.
    extreme = torch.rand(shape, generator=gen) < 0.3
    outputs = torch.where(extreme, outputs.round(), outputs)
    return outputs, torch.rand(shape, generator=gen)


@PROPERTY
@given(inputs=net2vec_inputs())
def test_net2vec_loss_lies_in_its_bounds(inputs):
    # Per instance: -max(b, 1 - b) * area <= L <= 0 for outputs in [0, 1].
    shape, seed, b, thresh = inputs
    outputs, targets = _outputs_and_targets(shape, seed)
    per_instance = net2vec_loss(outputs, targets, factor_pos_class=b, reduction='none',
                                target_thresh=thresh)
    area = outputs.numel() // max(per_instance.numel(), 1)
    assert (per_instance <= 0).all()
    assert (per_instance >= -max(b, 1 - b) * area - 1e-5).all()


@PROPERTY
@given(inputs=net2vec_inputs())
def test_net2vec_gradient_is_minus_b_on_targets_and_one_minus_b_elsewhere(inputs):
    shape, seed, b, thresh = inputs
    outputs, targets = _outputs_and_targets(shape, seed)
    outputs.requires_grad_(True)
    net2vec_loss(outputs, targets, factor_pos_class=b, reduction='sum', target_thresh=thresh).backward()
    expected = torch.where(targets > thresh, torch.tensor(-b), torch.tensor(1 - b))
    torch.testing.assert_close(outputs.grad, expected)


# -- PointRend points --------------------------------------------------------------------------------

@PROPERTY
@given(num_points=st.integers(1, 5000), oversample=st.floats(1.0, 5.0), beta=UNIT)
def test_training_point_counts(num_points, oversample, beta):
    candidates, uncertain, random = training_point_counts(num_points, oversample, beta)
    assert uncertain == int(beta * num_points) and uncertain + random == num_points
    assert candidates == int(oversample * num_points) >= num_points >= uncertain


@st.composite
def coarse_logits(draw, max_size=8):
    """(B, K, H, W) random logits; K = 1 is a single sigmoid logit."""
    sizes = (draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(1, max_size)),
             draw(st.integers(1, max_size)))
    return torch.randn(sizes, generator=_gen(draw(SEEDS))) * 3


@PROPERTY
@given(logits=coarse_logits(), num_points=st.integers(1, 48), oversample=st.floats(1.0, 3.0),
       beta=UNIT, align_corners=st.booleans(), seed=SEEDS)
def test_training_points_keep_the_most_uncertain_candidates(logits, num_points, oversample, beta,
                                                            align_corners, seed):
    num_candidates, num_uncertain, _ = training_point_counts(num_points, oversample, beta)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        coords = uncertain_point_coords_with_randomness(logits, num_points, oversample, beta,
                                                        align_corners)
        torch.manual_seed(seed)  # the candidates are the first draw
        candidates = torch.rand(logits.shape[0], num_candidates, 2)
    assert coords.shape == (logits.shape[0], num_points, 2)
    assert ((coords >= 0) & (coords < 1)).all()
    chosen = coords[:, :num_uncertain]
    assert (chosen[:, :, None] == candidates[:, None]).all(-1).any(-1).all()  # each is a candidate
    scores = point_uncertainty(point_sample(logits, candidates, align_corners))[:, 0]
    chosen_scores = point_uncertainty(point_sample(logits, chosen, align_corners))[:, 0]
    top = scores.topk(num_uncertain, dim=1).values
    torch.testing.assert_close(chosen_scores.sort(dim=1, descending=True).values, top)


@PROPERTY
@given(logits=coarse_logits(), num_points=st.integers(1, 80), align_corners=st.booleans())
def test_grid_points_are_the_most_uncertain_pixels(logits, num_points, align_corners):
    batch, _, height, width = logits.shape
    indices, coords = uncertain_point_indices_on_grid(logits, num_points, align_corners)
    assert indices.shape == (batch, min(height * width, num_points))
    scores = point_uncertainty(logits).view(batch, -1)
    chosen = torch.zeros_like(scores, dtype=torch.bool).scatter(1, indices, True)
    assert (chosen.sum(1) == indices.shape[1]).all()  # no pixel twice
    for b in range(batch):
        if (~chosen[b]).any():
            assert scores[b][chosen[b]].min() >= scores[b][~chosen[b]].max()
    # The coords land on the chosen pixels exactly, and scattering changes only those pixels.
    index = indices[:, None].expand(-1, logits.shape[1], -1)
    sampled = point_sample(logits, coords, align_corners)
    torch.testing.assert_close(sampled, logits.flatten(2).gather(2, index))
    point_logits = torch.randn_like(sampled)
    refined, flat = scatter_point_logits(logits, indices, point_logits).flatten(2), logits.flatten(2)
    others = ~chosen[:, None].expand_as(flat)
    assert torch.equal(refined[others], flat[others])
    assert torch.equal(refined.gather(2, index), point_logits)


# -- normalisation invariants ------------------------------------------------------------------------

@PROPERTY
@given(rows=st.integers(1, 6), dim=st.integers(2, 16), log_scale=st.floats(-5, 4), seed=SEEDS)
def test_unit_embeddings_have_norm_one_and_zero_stays_zero(rows, dim, log_scale, seed):
    embeddings = torch.randn(rows, dim, generator=_gen(seed)) * 10**log_scale
    embeddings[0] = 0
    units = unit_embeddings(embeddings)
    torch.testing.assert_close(units[1:].norm(dim=1), torch.ones(rows - 1))
    assert torch.equal(units[0], torch.zeros(dim))


@PROPERTY
@given(weight=st.floats(0.1, 20.0), bias=st.floats(-1.0, 0.5), seed=SEEDS)
def test_modified_sigmoid_is_a_probability_that_is_one_at_the_class_mean(weight, bias, seed):
    cos_sim = torch.rand(64, generator=_gen(seed)) * 2 - 1
    cos_sim = torch.cat([cos_sim, torch.tensor([-1.0, 1.0])]).sort().values
    w, b = torch.tensor([weight]), torch.tensor([bias])
    p = modified_sigmoid(cos_sim[:, None], w, b)[:, 0]
    assert ((p >= 0) & (p <= 1 + 1e-6)).all()
    assert p[-1].item() == 1.0  # s = 1
    assert (p.diff() >= -1e-6).all()  # monotone in s for w > 0 (up to float32 rounding)


@PROPERTY
@given(weight=st.floats(-20.0, 20.0), bias=st.floats(-2.0, 2.0), seed=SEEDS)
def test_modified_sigmoid_logit_is_finite_and_clamped(weight, bias, seed):
    cos_sim = torch.rand(32, 1, generator=_gen(seed)) * 2 - 1
    logits = modified_sigmoid_logit(cos_sim, torch.tensor([weight]), torch.tensor([bias]))
    bound = math.log((1 - 1e-5) / 1e-5)  # logit of the clamp [1e-5, 1 - 1e-5]
    assert torch.isfinite(logits).all() and (logits.abs() <= bound + 1e-3).all()


@PROPERTY
@given(classes=st.integers(1, 5), dim=st.integers(2, 8), lr=st.floats(0.01, 1.0), seed=SEEDS)
def test_class_means_stay_unit_or_unchanged(classes, dim, lr, seed):
    gen = _gen(seed)
    means = unit_embeddings(torch.randn(classes, dim, generator=gen))
    means[0] = 0  # a class never seen
    sums = torch.randn(classes, dim, generator=gen) * (torch.rand(classes, 1, generator=gen) > 0.4)
    seen = sums.norm(dim=1) > 0
    for updated in (ema_update_means(means, sums, lr), means_from_sums(means, sums)):
        assert torch.isfinite(updated).all()
        torch.testing.assert_close(updated[seen].norm(dim=1), torch.ones(int(seen.sum())))
        assert torch.equal(updated[~seen], means[~seen])


@PROPERTY
@given(classes=st.integers(1, 4), height=st.integers(1, 12), width=st.integers(1, 12),
       band=st.integers(1, 4), seed=SEEDS)
def test_boundary_iou_lies_in_0_1(classes, height, width, band, seed):
    gen = _gen(seed)
    label = torch.randint(classes, (height, width), generator=gen)
    label[torch.rand(height, width, generator=gen) < 0.1] = 255
    pred = torch.randint(classes, (height, width), generator=gen)
    intersect, union = boundary_intersect_and_union(pred, label, classes, band)
    assert (intersect <= union).all()
    biou = class_boundary_iou(intersect, union)
    assert (biou[union > 0] >= 0).all() and (biou[union > 0] <= 1).all() and biou[union == 0].isnan().all()
    assert (inner_boundary(label == 0, band) <= (label == 0)).all()  # the band lies inside the mask
    same_intersect, same_union = boundary_intersect_and_union(label, label, classes, band)
    assert torch.equal(same_intersect, same_union)  # a perfect prediction scores 1 wherever judged


@PROPERTY
@given(logits=coarse_logits(max_size=6), scale=st.floats(0.1, 10.0), channels=st.integers(1, 4),
       seed=SEEDS)
def test_soft_object_regions_and_relations_are_distributions(logits, scale, channels, seed):
    batch, regions, height, width = logits.shape
    weights = soft_object_regions(logits, scale)
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum(2), torch.ones(batch, regions))
    feats = torch.randn(batch, channels, height, width, generator=_gen(seed))
    region_feats = spatial_gather(feats, logits, scale)  # convex combinations of the pixel features
    low, high = feats.flatten(2).min(2).values, feats.flatten(2).max(2).values
    assert (region_feats[..., 0] >= low[..., None] - 1e-5).all()
    assert (region_feats[..., 0] <= high[..., None] + 1e-5).all()
    relation = pixel_region_relation(feats, region_feats)
    torch.testing.assert_close(relation.sum(2), torch.ones(batch, height * width))
    context = object_context(feats, region_feats, region_feats)
    assert context.shape == feats.shape and torch.isfinite(context).all()
