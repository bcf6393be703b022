"""DLDE (Deep Local Directional Embedding) classification as pure tensor functions.

Shape shorthand: ``N`` embeddings (anchors), ``E`` embedding size, ``C`` classes.

An anchor's class score is the cosine similarity ``s`` of its unit embedding to a tracked per-class
mean direction, turned into a probability by the *modified sigmoid*

    p_c = sigmoid(w_c (s + b_c)) / sigmoid(w_c (1 + b_c)),

which is 1 at ``s = 1`` (the embedding points at the class mean) and, with the initial
``(w, b) = (7, -0.5)``, 0.515 at ``s = 0.5``, 0.0302 at ``s = 0`` and 2.8e-5 at ``s = -1``. The means
are not learned by gradient: they follow the embeddings of the anchors assigned to each class
(:func:`ema_update_means`, :func:`means_from_sums`).
"""
import torch
import torch.nn.functional as F

from .precision import computed_in_fp32


@computed_in_fp32
def unit_embeddings(embeddings: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """L2-normalize along the last dimension; a zero embedding stays zero (no NaN).

    Args:
        embeddings: (..., E).
        eps: lower bound of the norm it divides by.

    Returns:
        (..., E) unit vectors (zero where the input is zero).
    """
    return embeddings / embeddings.norm(dim=-1, keepdim=True).clamp(min=eps)


@computed_in_fp32
def cosine_to_means(unit: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """Cosine similarities of unit embeddings to unit class means.

    Args:
        unit: (..., E) unit embeddings (:func:`unit_embeddings`).
        means: (C, E) unit class means.

    Returns:
        (..., C) fp32 ``s = u . m_c``.
    """
    return unit @ means.t()


@computed_in_fp32
def anchor_embedding_norms(embedding_map: torch.Tensor, embedding_size: int,
                           eps: float = 1e-6) -> torch.Tensor:
    """The L2 norm of every anchor's embedding in a head's output map, clamped to ``eps``.

    Args:
        embedding_map: (B, A*E, H, W), anchor a's embedding in channels [a*E, (a+1)*E).
        embedding_size: E.

    Returns:
        (B, A, 1, H, W) fp32 norms, at least ``eps`` (the divisor of :func:`unit_embeddings`).
    """
    batch, _, height, width = embedding_map.shape
    grouped = embedding_map.view(batch, -1, embedding_size, height, width)
    return grouped.norm(dim=2, keepdim=True).clamp(min=eps)


def _per_anchor_filters(means: torch.Tensor, num_anchors: int) -> torch.Tensor:
    """(C, E) means -> (A*C, E, 1, 1) weights of the grouped 1x1 convolution, one group per anchor."""
    return means.repeat(num_anchors, 1)[:, :, None, None]


def _dots_over_norms(embedding_map: torch.Tensor, norms: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """(B, A*E, H, W), (B, A, 1, H, W), (C, E) -> (B, A*C, H, W) ``(x . m_c) / |x|``."""
    batch, _, height, width = embedding_map.shape
    num_anchors = norms.shape[1]
    dots = F.conv2d(embedding_map, _per_anchor_filters(means, num_anchors), groups=num_anchors)
    return (dots.view(batch, num_anchors, -1, height, width) / norms).view(batch, -1, height, width)


class _CosineMapToMeans(torch.autograd.Function):
    """:func:`cosine_map_to_means` with a backward that builds one E-sized tensor.

    With n = |x| (clamped to eps) and s_c = (x . m_c) / n, the gradient of the whole expression (the
    norm's path included) is ``(sum_c g_c m_c) / n - x (sum_c g_c s_c) / n**2``, the second term zero
    where the norm was clamped. Autograd's chain through the division and ``norm`` instead holds the
    E-sized gradients of both paths at once. The means are buffers: no gradient.
    """

    @staticmethod
    def forward(ctx, embedding_map, norms, means, eps):
        cos_sim = _dots_over_norms(embedding_map, norms, means)
        ctx.save_for_backward(embedding_map, norms, means, cos_sim)
        ctx.eps = eps
        return cos_sim

    @staticmethod
    def backward(ctx, grad_cos):
        embedding_map, norms, means, cos_sim = ctx.saved_tensors
        batch, channels, height, width = embedding_map.shape
        num_anchors = norms.shape[1]
        grad = grad_cos.reshape(batch, num_anchors, -1, height, width)
        grad_map = F.conv_transpose2d((grad / norms).view(batch, -1, height, width),
                                      _per_anchor_filters(means, num_anchors), groups=num_anchors)
        radial = (grad * cos_sim.view_as(grad)).sum(2, keepdim=True) / norms**2 * (norms > ctx.eps)
        grad_map.view(batch, num_anchors, -1, height, width).addcmul_(
            embedding_map.view(batch, num_anchors, -1, height, width), radial, value=-1)
        return grad_map, None, None, None


@computed_in_fp32
def cosine_map_to_means(embedding_map: torch.Tensor, norms: torch.Tensor, means: torch.Tensor,
                        eps: float = 1e-6) -> torch.Tensor:
    """Cosine similarities of every anchor's embedding to the class means, without materialising the
    unit embeddings: ``(x . m_c) / |x|``, the dot products as a 1x1 convolution with one group per
    anchor, then divided by the norms.

    ``unit_embeddings`` followed by ``cosine_to_means`` on the (B, H*W*A, E) permuted copy keeps two
    more E-sized tensors alive (the copy and the unit vectors) and its backward two more; here the
    map itself is the only one, and the backward (:class:`_CosineMapToMeans`) builds one.

    Args:
        embedding_map: (B, A*E, H, W) embeddings (a head's output).
        norms: (B, A, 1, H, W) their norms (:func:`anchor_embedding_norms` with the same ``eps``),
            constants of this function: the gradient through |x| is part of its backward.
        means: (C, E) unit class means (no gradient).

    Returns:
        (B, A*C, H, W) fp32 similarities, channel a*C + c for anchor a and class c (RetinaHead's
        layout of class scores).
    """
    norms = norms.detach()
    if torch.is_grad_enabled() and embedding_map.requires_grad:
        return _CosineMapToMeans.apply(embedding_map, norms, means, eps)
    return _dots_over_norms(embedding_map, norms, means)


@computed_in_fp32
def gather_unit_embeddings(embedding_map: torch.Tensor, norms: torch.Tensor,
                           anchor_index: torch.Tensor) -> torch.Tensor:
    """The unit embeddings of some anchors of a head's output map.

    Args:
        embedding_map: (B, A*E, H, W) embeddings.
        norms: (B, A, 1, H, W) their norms (:func:`anchor_embedding_norms`).
        anchor_index: (N,) indices into mmdet's flat anchor order of the map, ((b*H + h)*W + w)*A + a.

    Returns:
        (N, E) fp32 ``x / |x|`` (what :func:`unit_embeddings` gives, zero for a zero embedding).
    """
    batch, _, height, width = embedding_map.shape
    num_anchors = norms.shape[1]
    grouped = embedding_map.view(batch, num_anchors, -1, height, width)
    anchor = anchor_index % num_anchors
    column = anchor_index // num_anchors % width
    row = anchor_index // (num_anchors * width) % height
    image = anchor_index // (num_anchors * width * height)
    return grouped[image, anchor, :, row, column] / norms[image, anchor, :, row, column]


@computed_in_fp32
def modified_sigmoid_log_prob(cos_sim: torch.Tensor, weight: torch.Tensor,
                              bias: torch.Tensor) -> torch.Tensor:
    """log p of the modified sigmoid, computed with logsigmoid for stability.

    Args:
        cos_sim: (..., C) cosine similarities s in [-1, 1].
        weight: (C,) per-class w (the slope); p <= 1 holds for w > 0.
        bias: (C,) per-class b (the shift).

    Returns:
        (..., C) ``log sigmoid(w (s + b)) - log sigmoid(w (1 + b))``.
    """
    return F.logsigmoid(weight * (cos_sim + bias)) - F.logsigmoid(weight * (1 + bias))


def modified_sigmoid(cos_sim: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The DLDE probability ``p = sigmoid(w (s + b)) / sigmoid(w (1 + b))``; shapes as
    :func:`modified_sigmoid_log_prob`."""
    return modified_sigmoid_log_prob(cos_sim, weight, bias).exp()


@computed_in_fp32
def modified_sigmoid_logit(cos_sim: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                           eps: float = 1e-5) -> torch.Tensor:
    """``logit(p)`` of the modified sigmoid with p clamped to [eps, 1 - eps].

    A sigmoid of this returns p, so the probabilities plug into losses and post-processing written
    for logits (mmdet's sigmoid focal loss, ``predict_by_feat``). The clamp is torchsight's (1e-5);
    it also keeps the logit finite where a learned w < 0 would give p > 1.

    Returns:
        (..., C) fp32 logits, computed in fp32 whatever the input dtype (in fp16/bf16 ``1 - eps``
        rounds to 1 and the logit would be infinite); shapes as :func:`modified_sigmoid_log_prob`.
    """
    log_prob = modified_sigmoid_log_prob(cos_sim, weight, bias)
    return torch.logit(log_prob.exp().clamp(eps, 1 - eps))


def class_embedding_sums(embeddings: torch.Tensor, labels: torch.Tensor,
                         num_classes: int) -> torch.Tensor:
    """Per-class sums of the embeddings of the anchors assigned to a class.

    Args:
        embeddings: (N, E) unit embeddings.
        labels: (N,) int class of each anchor; values outside [0, C) (background, ignored) are
            left out.
        num_classes: C.

    Returns:
        (C, E) fp32 sums (thousands of half-precision terms would lose precision); a row is zero
        for a class without anchors.
    """
    positive = (labels >= 0) & (labels < num_classes)
    sums = embeddings.new_zeros(num_classes, embeddings.shape[-1], dtype=torch.float32)
    return sums.index_add_(0, labels[positive], embeddings[positive].float())


def ema_update_means(means: torch.Tensor, sums: torch.Tensor, lr: float) -> torch.Tensor:
    """One exponential-moving-average step of the class mean directions.

    For every class with a non-zero sum S: ``m <- normalize((1 - lr) m + lr S / |S|)``; the other
    classes keep their mean. From m = 0 the first step gives exactly ``S / |S|``.

    Args:
        means: (C, E) current mean directions (unit rows, or zero before the first update).
        sums: (C, E) per-class embedding sums of this step.
        lr: rate in (0, 1].

    Returns:
        (C, E) new means.
    """
    seen = sums.norm(dim=1, keepdim=True) > 0
    updated = unit_embeddings((1 - lr) * means + lr * unit_embeddings(sums))
    return torch.where(seen, updated, means)


def means_from_sums(means: torch.Tensor, sums: torch.Tensor) -> torch.Tensor:
    """Class mean directions from accumulated sums (the 'manual' mode); unseen classes keep theirs.

    Args:
        means: (C, E) current means.
        sums: (C, E) embedding sums accumulated since the last update.

    Returns:
        (C, E) ``sums / |sums|`` where the sum is non-zero, ``means`` elsewhere (never NaN).
    """
    seen = sums.norm(dim=1, keepdim=True) > 0
    return torch.where(seen, unit_embeddings(sums), means)
