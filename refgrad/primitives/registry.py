"""The primitive registry: one entry per primitive, keyed by name so graphs serialise.

`defprim` registers an elementwise primitive from a sympy expression; its partials come from
`sympy.diff` here, once. `defstructural` registers a structural primitive with an exact VJP.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from refgrad.primitives.compile import Compiled, compile_expr

REGISTRY: dict[str, Elementwise | Structural] = {}


@dataclass(eq=False)
class Elementwise:
    """f(a, b, ...) applied element by element; everything exact comes from `expr`.

    `kink`: an expression whose zero set is where f is not differentiable (None if smooth);
    `subgradient`: what the partials give there, in words. `domain`: conditions that must hold
    at the point, with the message to show. `float_forward`/`float_partials`: numerically stable
    numpy forms used only by the float backends (tests check them against `expr`).
    """

    name: str
    symbols: tuple[sp.Symbol, ...]
    expr: sp.Expr
    kink: sp.Expr | None = None
    subgradient: str = ""
    domain: tuple[tuple[sp.Basic, str], ...] = ()
    float_forward: Callable[..., Any] | None = None
    float_partials: tuple[Callable[..., Any], ...] | None = None
    partials: tuple[sp.Expr, ...] = field(init=False)
    unit_partials: tuple[int, ...] = field(init=False)  # +1/-1 where a partial is that constant
    _cache: dict = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        floats = self.expr.atoms(sp.Float)
        if floats:
            raise ValueError(
                f"primitive {self.name!r}: float constant {sorted(floats)[0]} in its definition "
                "caps precision at 53 bits; use sympy.Rational"
            )
        self.partials = tuple(sp.diff(self.expr, s) for s in self.symbols)
        self.unit_partials = tuple(int(d) if d in (1, -1) else 0 for d in self.partials)

    @property
    def arity(self) -> int:
        return len(self.symbols)

    def _compiled(self, key: Any, expr: sp.Basic) -> Compiled:
        fn = self._cache.get(key)
        if fn is None:
            fn = self._cache[key] = compile_expr(expr, self.symbols)
        return fn

    def forward(self, b: Any, *xs: Any) -> Any:
        """f(xs) on backend b."""
        if b.is_float and b.float_forms and self.float_forward is not None:
            return self.float_forward(*xs)
        return self._compiled("f", self.expr)(b, *xs)

    def partial(self, i: int, b: Any, xs: Sequence[Any], out: Any) -> Any:
        """∂f/∂x_i at xs (out = f(xs), used by the stable float forms)."""
        if b.is_float and b.float_forms and self.float_partials is not None:
            return self.float_partials[i](*xs, out)
        return self._compiled(("d", i), self.partials[i])(b, *xs)

    def derivative(self, alpha: tuple[int, ...]) -> tuple[str, Any]:
        """Mixed partial ∂^alpha f (multi-index over the arguments) for Taylor mode, as
        ('zero', None), ('const', Rational) or ('fn', compiled), cached.

        DiracDelta (the derivative of sign, from abs) is replaced by 0: exact away from the kink,
        and the natural extension of the declared subgradient at it.
        """
        key = ("D", alpha)
        if key not in self._cache:
            e = self.expr
            for s, k in zip(self.symbols, alpha, strict=True):
                if k:
                    e = sp.diff(e, s, k)
            e = e.replace(lambda u: isinstance(u, sp.DiracDelta), lambda u: sp.Integer(0))
            e = sp.piecewise_fold(e)
            if _is_zero(e):
                self._cache[key] = ("zero", None)
            elif e.is_Rational:
                self._cache[key] = ("const", e)
            else:
                self._cache[key] = ("fn", compile_expr(e, self.symbols))
        return self._cache[key]

    def multi_indices(self, order: int) -> list[tuple[int, ...]]:
        """All multi-indices alpha with 1 <= |alpha| <= order."""
        return [
            a
            for a in itertools.product(range(order + 1), repeat=self.arity)
            if 1 <= sum(a) <= order
        ]

    def kink_fn(self) -> Compiled | None:
        return None if self.kink is None else self._compiled("kink", self.kink)

    def domain_fns(self) -> list[tuple[Compiled, str]]:
        return [(self._compiled(("dom", i), c), msg) for i, (c, msg) in enumerate(self.domain)]


def _is_zero(e: sp.Basic) -> bool:
    if isinstance(e, sp.Piecewise):
        return all(_is_zero(v) for v, _ in e.args)
    return e == 0


@dataclass(eq=False)
class Structural:
    """A structural primitive with exact rules over arrays of any backend.

    shape(in_shapes, attrs) -> out shape (raises ShapeError);
    forward(b, xs, attrs, nb) -> out, where inputs may carry `nb` (0 or 1) leading batch axes;
    vjp(b, g, xs, out, attrs) -> tuple of input cotangents (None where not needed);
    linear: True if linear in each input separately (matmul: Taylor mode forms the Cauchy
    product of the inputs' coefficients); joint=True if linear in all inputs together
    (concatenate, stack: coefficient k of the output is forward of the inputs' coefficients k);
    otherwise `taylor(b, coeffs, attrs, out0)` handles it, with coeffs[0] the unbatched inputs
    and coeffs[k] the batched coefficient-k inputs.
    """

    name: str
    shape: Callable[..., tuple[int, ...]]
    forward: Callable[..., Any]
    vjp: Callable[..., tuple[Any, ...]]
    linear: bool = True
    joint: bool = False
    taylor: Callable[..., Any] | None = None
    kink: Callable[..., Any] | None = None
    subgradient: str = ""


def defprim(
    name: str,
    args: str,
    definition: Callable[..., sp.Expr],
    *,
    kink: Callable[..., sp.Expr] | None = None,
    subgradient: str = "",
    domain: Sequence[tuple[Callable[..., sp.Basic], str]] = (),
    float_forward: Callable[..., Any] | None = None,
    float_partials: Sequence[Callable[..., Any]] | None = None,
) -> Elementwise:
    """Register an elementwise primitive: `definition(*symbols)` is its sympy expression."""
    syms = tuple(sp.Symbol(s, real=True) for s in args.split())
    prim = Elementwise(
        name=name,
        symbols=syms,
        expr=sp.sympify(definition(*syms)),
        kink=None if kink is None else sp.sympify(kink(*syms)),
        subgradient=subgradient,
        domain=tuple((sp.sympify(c(*syms)), m) for c, m in domain),
        float_forward=float_forward,
        float_partials=None if float_partials is None else tuple(float_partials),
    )
    return _register(prim)


def defstructural(name: str, **rules: Any) -> Structural:
    """Register a structural primitive (see `Structural` for the rules it needs)."""
    return _register(Structural(name=name, **rules))


def _register(prim: Any) -> Any:
    if prim.name in REGISTRY:
        raise ValueError(f"primitive {prim.name!r} is already registered")
    REGISTRY[prim.name] = prim
    return prim


def get(name: str) -> Elementwise | Structural:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"no primitive named {name!r}; known: {sorted(REGISTRY)}") from None
