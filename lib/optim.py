"""Gradient clipping and AdaGrad, in place on flat parameter and gradient vectors (n,)."""
import numpy as np


def clip_(g, clip):
    """Clip every element of g (n,) to [-clip, clip], in place."""
    np.clip(g, -clip, clip, out=g)


def adagrad_step_(theta, g, mem, eta, eps, tmp):
    """One AdaGrad update, in place: mem += g^2;  theta -= eta g / sqrt(mem + eps).

    theta, g, mem, tmp: (n,) float64; tmp is scratch space.
    """
    np.multiply(g, g, out=tmp)
    mem += tmp
    np.add(mem, eps, out=tmp)
    np.sqrt(tmp, out=tmp)
    np.divide(g, tmp, out=tmp)
    tmp *= eta
    theta -= tmp
