"""mmsegmentation losses."""
from .net2vec_loss import Net2VecLoss

__all__ = ['Net2VecLoss']
