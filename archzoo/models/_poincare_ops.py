"""Poincaré-ball operations for Poincaré ResNet (van Spengler, Berkhout and Mettes, "Poincaré ResNet",
ICCV 2023, arXiv 2303.14027), with the manual backward passes the paper derives to keep autograd
graphs small (one graph node per operation instead of dozens of element-wise nodes).

Authors' code: https://github.com/maxvanspengler/poincare-resnet (``models/manifolds/``); the forward
formulas below follow its ``custom_autograd`` path at commit fbbbbf8 term by term, so that float64
outputs agree to rounding, including where the curvature ``c`` is a float32 tensor while the
activations are float64 (sub-expressions of ``c`` alone are then evaluated in float32, as there).

Every core operation exists twice: a plain function (``*_fwd``: autograd differentiates it) and an
``autograd.Function`` with a hand-written backward (this module's derivations; the gradient with
respect to ``c`` is the exact one, so ``gradcheck`` passes for it too, where the authors' Möbius
addition returns a wrong ``c`` gradient that their fixed-curvature models never use). The public
functions take ``manual=True`` to use the latter.

On the meta device (shape propagation, FLOP counting) the element-wise operations return empty tensors
of the right shape without evaluating their formulas: they hold no matmul (the only FLOPs archzoo
counts), and the Python meta kernels of their dozens of element-wise ops would make a meta forward of
the network many times slower than a real one. ``mlr`` still runs its matmul there.

Conventions: ``c > 0`` is the curvature magnitude (a tensor, usually 0-dim); ``dim`` is the vector
dimension; points of the ball have norm below ``1/sqrt(c)``; ``project`` keeps them at most
``(1 - eps)/sqrt(c)`` from the origin with eps 1e-5 in float64 and 4e-3 otherwise (the authors).
"""
from __future__ import annotations

import torch

__all__ = [
    "mobius_add", "project", "expmap0", "logmap0", "expmap", "logmap", "gyration", "transp", "conf_factor",
    "dist", "frechet_variance", "poincare_midpoint", "mlr", "fully_connected",
    "MobiusAdd", "Project", "ExpMap0", "LogMap0", "ConfFactor", "ExpSecondTerm", "LogScaledTerm",
]

_MIN = 1e-15


def _sq(x: torch.Tensor, dim: int) -> torch.Tensor:
    return x.pow(2).sum(dim=dim, keepdim=True)


def _dot(x: torch.Tensor, y: torch.Tensor, dim: int) -> torch.Tensor:
    return (x * y).sum(dim=dim, keepdim=True)


def _like(g: torch.Tensor | None, t: torch.Tensor) -> torch.Tensor | None:
    """A gradient summed over broadcast dimensions and cast to its input's shape and dtype."""
    if g is None:
        return None
    if g.shape != t.shape:
        g = g.sum_to_size(t.shape) if t.dim() else g.sum()
    return g.to(t.dtype)


def _meta(*ts: torch.Tensor, keep: int | None = None) -> torch.Tensor | None:
    """On the meta device: an empty result of the broadcast shape (``keep``: that dim reduced to 1)."""
    if not ts[0].is_meta:
        return None
    shape = list(torch.broadcast_shapes(*(t.shape for t in ts)))
    if keep is not None:
        shape[keep] = 1
    dtype = ts[0].dtype
    for t in ts[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return torch.empty(shape, dtype=dtype, device="meta")


def _eps(dtype: torch.dtype) -> float:
    return 1e-5 if dtype == torch.float64 else 4e-3


# ----------------------------------------------------------------------------- plain forwards
def mobius_add_fwd(x: torch.Tensor, y: torch.Tensor, c: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """x (+)_c y = ((1 + 2c<x,y> + c|y|^2) x + (1 - c|x|^2) y) / (1 + 2c<x,y> + c^2 |x|^2 |y|^2)."""
    x2, y2, xy = _sq(x, dim), _sq(y, dim), _dot(x, y, dim)
    a = 1 + 2 * c * xy + c * y2
    b = 1 - c * x2
    denom = (1 + 2 * c * xy + c**2 * x2 * y2).clamp_min(_MIN)
    return (a * x + b * y) / denom


def _maxnorm(c: torch.Tensor, eps: float) -> torch.Tensor:
    maxnorm = (1 - eps) / ((c + _MIN) ** 0.5)
    return torch.where(c.gt(0), maxnorm, c.new_full((), 1e15))


def project_fwd(x: torch.Tensor, c: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Pull points farther than (1 - eps)/sqrt(c) from the origin back onto that sphere."""
    maxnorm = _maxnorm(c, _eps(x.dtype))
    norm = x.norm(dim=dim, keepdim=True, p=2).clamp_min(_MIN)
    return torch.where(norm > maxnorm, x / norm * maxnorm, x)


def expmap0_fwd(v: torch.Tensor, c: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """exp_0(v) = tanh(sqrt(c)|v|) v / (sqrt(c)|v|) (before projection)."""
    s = v.norm(dim=dim, keepdim=True).clamp_min(_MIN) * c.sqrt()
    return s.tanh() * v / s


def logmap0_fwd(y: torch.Tensor, c: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """log_0(y) = artanh(sqrt(c)|y|) y / (sqrt(c)|y|)."""
    s = y.norm(dim=dim, keepdim=True).clamp_min(_MIN) * c.sqrt()
    return torch.atanh(s) * y / s


def conf_factor_fwd(x: torch.Tensor, c: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """lambda_x = 2 / (1 - c|x|^2)."""
    return 2 / (1 - c * _sq(x, dim)).clamp_min(_MIN)


def exp_second_term_fwd(x: torch.Tensor, v: torch.Tensor, c: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """tanh(sqrt(c) lambda_x |v| / 2) v / (sqrt(c)|v|): the right operand of exp_x(v) = x (+) it."""
    ld = 1 - c * _sq(x, dim)
    q = v.norm(dim=dim, keepdim=True).clamp_min(_MIN) * c.sqrt()
    return (q / ld).tanh() / q * v


def log_scaled_term_fwd(x: torch.Tensor, z: torch.Tensor, c: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """log_x(y) given z = (-x) (+) y: 2/(sqrt(c) lambda_x) artanh(sqrt(c)|z|) z/|z|."""
    ld = 1 - c * _sq(x, dim)
    s = z.norm(dim=dim, keepdim=True).clamp_min(_MIN) * c.sqrt()
    return ld / s * s.atanh() * z


# ----------------------------------------------------------------------------- manual backward
class MobiusAdd(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, y: torch.Tensor, c: torch.Tensor, dim: int = -1) -> torch.Tensor:
        x2, y2, xy = _sq(x, dim), _sq(y, dim), _dot(x, y, dim)
        a = 1 + 2 * c * xy + c * y2
        b = 1 - c * x2
        denom = (1 + 2 * c * xy + c**2 * x2 * y2).clamp_min(_MIN)
        ctx.save_for_backward(x, y, c, x2, y2, xy, a, b, denom)
        ctx.dim = dim
        return (a * x + b * y) / denom

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        x, y, c, x2, y2, xy, a, b, denom = ctx.saved_tensors
        dim = ctx.dim
        ux, uy = _dot(g, x, dim), _dot(g, y, dim)
        t = (a * ux + b * uy) / denom  # <g, out>
        k = 2 * c / denom
        gx = gy = gc = None
        if ctx.needs_input_grad[0]:
            gx = a / denom * g - k * (t * c * y2 + uy) * x - k * (t - ux) * y
        if ctx.needs_input_grad[1]:
            gy = b / denom * g + k * (ux - t) * x + k * (ux - c * x2 * t) * y
        if ctx.needs_input_grad[2]:
            gc = ((2 * xy + y2) * ux - x2 * uy - t * (2 * xy + 2 * c * x2 * y2)) / denom
        return _like(gx, x), _like(gy, y), _like(gc, c), None


class Project(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, c: torch.Tensor, dim: int = -1) -> torch.Tensor:
        maxnorm = _maxnorm(c, _eps(x.dtype))
        norm = x.norm(dim=dim, keepdim=True, p=2).clamp_min(_MIN)
        cond = norm > maxnorm
        ctx.save_for_backward(x, c, maxnorm, norm, cond)
        ctx.dim = dim
        return torch.where(cond, x / norm * maxnorm, x)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        x, c, maxnorm, norm, cond = ctx.saved_tensors
        ux = _dot(g, x, ctx.dim)
        gx = gc = None
        if ctx.needs_input_grad[0]:
            gx = torch.where(cond, maxnorm / norm * g - ux * maxnorm / norm.pow(3) * x, g)
        if ctx.needs_input_grad[1]:
            gc = torch.where(cond, -ux * maxnorm / (2 * (c + _MIN) * norm), torch.zeros_like(ux))
        return _like(gx, x), _like(gc, c), None


class ExpMap0(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v: torch.Tensor, c: torch.Tensor, dim: int = -1) -> torch.Tensor:
        n = v.norm(dim=dim, keepdim=True).clamp_min(_MIN)
        s = n * c.sqrt()
        t = s.tanh()
        ctx.save_for_backward(v, c, n, s, t)
        ctx.dim = dim
        return t * v / s

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        v, c, n, s, t = ctx.saved_tensors
        uv = _dot(g, v, ctx.dim)
        sech2 = 1 / s.cosh().pow(2)
        gv = gc = None
        if ctx.needs_input_grad[0]:
            gv = (sech2 - t / s) / n.pow(2) * uv * v + t / s * g
        if ctx.needs_input_grad[1]:
            gc = uv / (2 * c) * (sech2 - t / s)
        return _like(gv, v), _like(gc, c), None


class LogMap0(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y: torch.Tensor, c: torch.Tensor, dim: int = -1) -> torch.Tensor:
        n = y.norm(dim=dim, keepdim=True).clamp_min(_MIN)
        s = n * c.sqrt()
        at = s.atanh()
        ctx.save_for_backward(y, c, n, s, at)
        ctx.dim = dim
        return at * y / s

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        y, c, n, s, at = ctx.saved_tensors
        uy = _dot(g, y, ctx.dim)
        inv = 1 / (1 - s * s)
        gy = gc = None
        if ctx.needs_input_grad[0]:
            gy = (inv - at / s) / n.pow(2) * uy * y + at / s * g
        if ctx.needs_input_grad[1]:
            gc = uy / (2 * c) * (inv - at / s)
        return _like(gy, y), _like(gc, c), None


class ConfFactor(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, c: torch.Tensor, dim: int = -1) -> torch.Tensor:
        x2 = _sq(x, dim)
        ctx.save_for_backward(x, c, x2)
        return 2 / (1 - c * x2).clamp_min(_MIN)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        x, c, x2 = ctx.saved_tensors
        inside = (c * x2 < 1).to(g.dtype)
        d2 = (1 - c * x2).pow(2)
        gx = g * inside * 4 * c / d2 * x if ctx.needs_input_grad[0] else None
        gc = g * inside * 2 * x2 / d2 if ctx.needs_input_grad[1] else None
        return _like(gx, x), _like(gc, c), None


class ExpSecondTerm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, v: torch.Tensor, c: torch.Tensor, dim: int = -1) -> torch.Tensor:
        ld = 1 - c * _sq(x, dim)
        n = v.norm(dim=dim, keepdim=True).clamp_min(_MIN)
        q = n * c.sqrt()
        p = q / ld
        t = p.tanh()
        ctx.save_for_backward(x, v, c, ld, n, q, p, t)
        ctx.dim = dim
        return t / q * v

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        x, v, c, ld, n, q, p, t = ctx.saved_tensors
        uv = _dot(g, v, ctx.dim)
        sech2 = 1 / p.cosh().pow(2)
        gx = gv = gc = None
        if ctx.needs_input_grad[0]:
            gx = 2 * c * uv * sech2 / ld.pow(2) * x
        if ctx.needs_input_grad[1]:
            gv = (sech2 / ld - t / q) / n.pow(2) * uv * v + t / q * g
        if ctx.needs_input_grad[2]:
            gc = uv / (2 * c) * (sech2 * (2 - ld) / ld.pow(2) - t / q)
        return _like(gx, x), _like(gv, v), _like(gc, c), None


class LogScaledTerm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, z: torch.Tensor, c: torch.Tensor, dim: int = -1) -> torch.Tensor:
        ld = 1 - c * _sq(x, dim)
        n = z.norm(dim=dim, keepdim=True).clamp_min(_MIN)
        s = n * c.sqrt()
        at = s.atanh()
        ctx.save_for_backward(x, z, c, ld, n, s, at)
        ctx.dim = dim
        return ld / s * at * z

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        x, z, c, ld, n, s, at = ctx.saved_tensors
        uz = _dot(g, z, ctx.dim)
        inv = 1 / (1 - s * s)
        gx = gz = gc = None
        if ctx.needs_input_grad[0]:
            gx = -2 * c * uz * at / s * x
        if ctx.needs_input_grad[1]:
            gz = ld * (inv - at / s) / n.pow(2) * uz * z + ld / s * at * g
        if ctx.needs_input_grad[2]:
            gc = uz / (2 * c) * (ld * inv - (2 - ld) * at / s)
        return _like(gx, x), _like(gz, z), _like(gc, c), None


# ----------------------------------------------------------------------------- public operations
def mobius_add(x: torch.Tensor, y: torch.Tensor, c: torch.Tensor, dim: int = -1, manual: bool = True) -> torch.Tensor:
    if (m := _meta(x, y)) is not None:
        return m
    return MobiusAdd.apply(x, y, c, dim) if manual else mobius_add_fwd(x, y, c, dim)


def project(x: torch.Tensor, c: torch.Tensor, dim: int = -1, manual: bool = True) -> torch.Tensor:
    if (m := _meta(x)) is not None:
        return m
    return Project.apply(x, c, dim) if manual else project_fwd(x, c, dim)


def expmap0(v: torch.Tensor, c: torch.Tensor, dim: int = -1, manual: bool = True) -> torch.Tensor:
    """Tangent vector at the origin -> point of the ball (projected)."""
    if (m := _meta(v)) is not None:
        return m
    y = ExpMap0.apply(v, c, dim) if manual else expmap0_fwd(v, c, dim)
    return project(y, c, dim, manual)


def logmap0(y: torch.Tensor, c: torch.Tensor, dim: int = -1, manual: bool = True) -> torch.Tensor:
    if (m := _meta(y)) is not None:
        return m
    return LogMap0.apply(y, c, dim) if manual else logmap0_fwd(y, c, dim)


def conf_factor(x: torch.Tensor, c: torch.Tensor, dim: int = -1, manual: bool = True) -> torch.Tensor:
    if (m := _meta(x, keep=dim)) is not None:
        return m
    return ConfFactor.apply(x, c, dim) if manual else conf_factor_fwd(x, c, dim)


def expmap(x: torch.Tensor, v: torch.Tensor, c: torch.Tensor, dim: int = -1, manual: bool = True) -> torch.Tensor:
    """exp_x(v) = x (+) (second term), projected."""
    if (m := _meta(x, v)) is not None:
        return m
    t = ExpSecondTerm.apply(x, v, c, dim) if manual else exp_second_term_fwd(x, v, c, dim)
    return project(mobius_add(x, t, c, dim, manual), c, dim, manual)


def logmap(x: torch.Tensor, y: torch.Tensor, c: torch.Tensor, dim: int = -1, manual: bool = True) -> torch.Tensor:
    if (m := _meta(x, y)) is not None:
        return m
    z = mobius_add(-x, y, c, dim, manual)
    return LogScaledTerm.apply(x, z, c, dim) if manual else log_scaled_term_fwd(x, z, c, dim)


def gyration(u: torch.Tensor, v: torch.Tensor, w: torch.Tensor, c: torch.Tensor, dim: int = -1,
             manual: bool = True) -> torch.Tensor:
    """gyr[u, v] w = -(u (+) v) (+) (u (+) (v (+) w)), as four Möbius additions (the authors' form)."""
    if (m := _meta(u, v, w)) is not None:
        return m
    uv = mobius_add(u, v, c, dim, manual)
    vw = mobius_add(v, w, c, dim, manual)
    uvw = mobius_add(u, vw, c, dim, manual)
    return mobius_add(-uv, uvw, c, dim, manual)


def transp(x: torch.Tensor, y: torch.Tensor, v: torch.Tensor, c: torch.Tensor, dim: int = -1,
           manual: bool = True) -> torch.Tensor:
    """Parallel transport of the tangent vector v from x to y: gyr[y, -x] v * lambda_x / lambda_y."""
    if (m := _meta(x, y, v)) is not None:
        return m
    lx = conf_factor(x, c, dim, manual)
    ly = conf_factor(y, c, dim, manual)
    return gyration(y, -x, v, c, dim, manual) * lx / ly


def dist(x: torch.Tensor, y: torch.Tensor, c: torch.Tensor, dim: int = -1, keepdim: bool = False,
         manual: bool = True) -> torch.Tensor:
    """Geodesic distance 2/sqrt(c) artanh(sqrt(c) |(-x) (+) y|)."""
    return 2 / c.sqrt() * (c.sqrt() * mobius_add(-x, y, c, dim, manual).norm(dim=dim, keepdim=keepdim)).atanh()


def frechet_variance(x: torch.Tensor, mu: torch.Tensor, c: torch.Tensor, dim: int = -1,
                     manual: bool = True) -> torch.Tensor:
    """Mean squared geodesic distance of the points x (..., N, D) to mu."""
    if x.is_meta:
        return torch.empty(torch.broadcast_shapes(x.shape, mu.shape)[:-2], dtype=x.dtype, device="meta")
    return dist(x, mu, c, dim, manual=manual).pow(2).mean(dim=dim)


def poincare_midpoint(x: torch.Tensor, c: torch.Tensor, vec_dim: int = -1, batch_dim: int = 0) -> torch.Tensor:
    """Einstein-midpoint-style Poincaré midpoint of the points along ``batch_dim`` (the paper's
    midpoint batch normalisation): weights gamma^2 = 1/(1 - c|x|^2), then mapped back into the ball."""
    if x.is_meta:
        shape = list(x.shape)
        shape[batch_dim] = 1
        return torch.empty(shape, dtype=x.dtype, device="meta")
    gamma_sq = 1 / (1 - c * _sq(x, vec_dim)).clamp_min(_MIN)
    numerator = (gamma_sq * x).sum(dim=batch_dim, keepdim=True)
    denominator = gamma_sq.sum(dim=batch_dim, keepdim=True) - x.size(batch_dim) / 2
    m = numerator / denominator
    gamma_m = 1 / (1 - c * _sq(m, vec_dim)).sqrt().clamp_min(_MIN)
    return gamma_m / (1 + gamma_m) * m


def mlr(x: torch.Tensor, z: torch.Tensor, r: torch.Tensor | None, c: torch.Tensor,
        lambda_form: str = "authors") -> torch.Tensor:
    """Signed, scaled distances of x (..., D) to the hyperplanes (z[:, k], r[k]) (HNN++ MLR).

    ``lambda_form="authors"`` computes the conformal factor as the authors' code does,
    ``2 * (1 - c|x|^2)``; ``"paper"`` uses the factor of the formula, ``2 / (1 - c|x|^2)``.
    """
    if x.is_meta:
        return torch.matmul(x, z)
    c_sqrt = c.sqrt()
    if lambda_form == "authors":
        lam = 2 * (1 - c * x.pow(2).sum(dim=-1, keepdim=True))
    elif lambda_form == "paper":
        lam = 2 / (1 - c * x.pow(2).sum(dim=-1, keepdim=True)).clamp_min(_MIN)
    else:
        raise ValueError(f"lambda_form must be 'authors' or 'paper', got {lambda_form!r}")
    z_norm = z.norm(dim=0).clamp_min(_MIN)
    if r is None:
        return 2 * z_norm / c_sqrt * torch.asinh(c_sqrt * lam / z_norm * torch.matmul(x, z))
    two_csqrt_r = 2.0 * c_sqrt * r
    return 2 * z_norm / c_sqrt * torch.asinh(
        c_sqrt * lam / z_norm * torch.matmul(x, z) * two_csqrt_r.cosh() - (lam - 1) * two_csqrt_r.sinh())


def fully_connected(x: torch.Tensor, z: torch.Tensor, bias: torch.Tensor | None, c: torch.Tensor,
                    manual: bool = True, lambda_form: str = "authors") -> torch.Tensor:
    """Poincaré fully-connected layer (HNN++): MLR distances v, w = sinh(sqrt(c) v)/sqrt(c),
    y = w / (1 + sqrt(1 + c|w|^2)), projected."""
    v = mlr(x, z, bias, c, lambda_form)
    if v.is_meta:
        return v
    c_sqrt = c.sqrt()
    w = (c_sqrt * v).sinh() / c_sqrt
    y = w / (1 + (1 + c * w.pow(2).sum(dim=-1, keepdim=True)).sqrt())
    return project(y, c, -1, manual)
