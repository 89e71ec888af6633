"""Gradient clipping, AdaGrad and Adam, in place on flat parameter and gradient vectors (n,)."""
import numpy as np


def clip_(g, clip):
    """Clip every element of g (n,) to [-clip, clip], in place."""
    np.clip(g, -clip, clip, out=g)


def adagrad_step_(theta, g, mem, eta, eps, tmp):
    """One AdaGrad update, in place: mem += g^2;  theta -= eta g / sqrt(mem + eps).

    theta, g, mem, tmp: (n,); tmp is scratch space.
    """
    np.multiply(g, g, out=tmp)
    mem += tmp
    np.add(mem, eps, out=tmp)
    np.sqrt(tmp, out=tmp)
    np.divide(g, tmp, out=tmp)
    tmp *= eta
    theta -= tmp


def adam_step_(theta, g, m1, m2, t, eta, beta1, beta2, eps, tmp):
    """One Adam update (t counts from 1), in place:
        m1 = beta1 m1 + (1 - beta1) g;   m2 = beta2 m2 + (1 - beta2) g^2
        theta -= eta (m1 / (1 - beta1^t)) / (sqrt(m2 / (1 - beta2^t)) + eps)
    theta, g, m1, m2, tmp: (n,); tmp is scratch space.
    """
    m1 *= beta1
    m1 += (1 - beta1) * g
    np.multiply(g, g, out=tmp)
    tmp *= 1 - beta2
    m2 *= beta2
    m2 += tmp
    np.multiply(m2, 1 / (1 - beta2 ** t), out=tmp)
    np.sqrt(tmp, out=tmp)
    tmp += eps
    np.divide(m1, tmp, out=tmp)
    tmp *= eta / (1 - beta1 ** t)
    theta -= tmp
