"""Closed-form release curves: Crank's series for diffusion, and surface erosion.

Every function answers the same question: what fraction of the drug has left a body that
was loaded uniformly at ``t = 0`` and sits in a perfect sink (concentration zero at every
exposed surface)? Times are seconds, lengths millimetres, diffusivities mm²/s, and the
result is the fraction *released*, 0..1, with the shape of ``t_s``.

The diffusion series come from J. Crank, *The Mathematics of Diffusion*, 2nd ed., Oxford
University Press (1975): chapter 4 (plane sheet), 5 (cylinder) and 6 (sphere). Each series
in ``exp(-k² τ)`` converges fast at large dimensionless time ``τ = D t / length²`` and
slowly as ``τ → 0``, so each body also has a short-time form and the public function picks
the form that is exact to rounding at the ``τ`` in hand. Both forms are private functions
here so the tests can check that they agree where both hold. Each result is 0 at t = 0,
at most 1, and non-decreasing in t up to rounding (neighbouring times may differ by an
ulp or two, below 1e-15).

These are the reference solutions the numerical release solver is tested against, and the
fast model the designer uses for plain cylinders.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import erfcx, jn_zeros

from doseprint.typed import FloatArray, ReleaseMechanism

__all__ = [
    "cylinder_released",
    "eroding_cylinder_released",
    "finite_cylinder_released",
    "infinite_cylinder_released",
    "slab_released",
    "sphere_released",
]

SECONDS_PER_HOUR = 3600.0

# Switch points in τ between the short-time and the long-time form, and the number of terms
# each form keeps. The counts make the dropped terms smaller than 1e-16 on their side of
# the switch: for the slab, (2n+1)²π²τ ≥ 40 by the last kept term at τ = 0.05; for the
# sphere, n²π²τ ≥ 40 likewise; the ierfc terms of the short forms fall at least as fast
# as exp(-n²/(4τ)).
_SLAB_SPHERE_SWITCH_TAU = 0.05
_SHORT_TERMS = 8
_SLAB_LONG_TERMS = 12
_SPHERE_LONG_TERMS = 16
# The cylinder's short-time form is an asymptotic expansion, not an exact identity: with 10
# terms it matches the Bessel series to ~2e-16 at τ = 1e-3 and better below. Above that
# switch 100 Bessel roots leave a tail below exp(-q_100² · 1e-3) ≈ exp(-98).
_CYLINDER_SWITCH_TAU = 1e-3
_CYLINDER_SHORT_TERMS = 10
_CYLINDER_LONG_TERMS = 100
# ierfc(x) ≈ exp(-x²)/(2x²√π) underflows to 0 by x ≈ 28; clamping the argument keeps x²
# finite when τ is tiny, so no overflow warning is raised for a result that is 0 anyway.
_IERFC_ARG_MAX = 40.0


# Input checks ---------------------------------------------------------------------------


def _times(t_s: ArrayLike) -> FloatArray:
    """Times as a float array; negative or non-finite times are a caller's bug."""
    t = np.asarray(t_s, dtype=np.float64)
    if not np.all(np.isfinite(t)) or np.any(t < 0.0):
        raise ValueError("release times must be finite and non-negative seconds")
    return t


def _positive(name: str, value: float) -> float:
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a finite number above 0, got {value!r}")
    return float(value)


def _non_negative(name: str, value: float) -> float:
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{name} must be a finite number at least 0, got {value!r}")
    return float(value)


def _ierfc(x: FloatArray) -> FloatArray:
    """Integrated complementary error function, ierfc(x) = ∫_x^∞ erfc(s) ds.

    Written as exp(-x²) (1/√π − x·erfcx(x)) so the two nearly equal terms of the textbook
    form exp(-x²)/√π − x·erfc(x) are compared before the exponential makes them tiny.
    """
    x = np.minimum(x, _IERFC_ARG_MAX)
    result: FloatArray = np.exp(-x * x) * (1.0 / math.sqrt(math.pi) - x * erfcx(x))
    return result


def _by_tau(
    tau: FloatArray,
    switch_tau: float,
    short_form: Callable[[FloatArray], FloatArray],
    long_form: Callable[[FloatArray], FloatArray],
) -> FloatArray:
    """Fraction released at each τ, from the short form below ``switch_tau``, else the long.

    τ = 0 stays exactly 0 (no form is evaluated there).
    """
    released = np.zeros_like(tau)
    short = (tau > 0.0) & (tau < switch_tau)
    long = tau >= switch_tau
    if np.any(short):
        released[short] = short_form(tau[short])
    if np.any(long):
        released[long] = long_form(tau[long])
    # Rounding can leave the sum a few ulp outside 0..1; the physics cannot.
    clipped: FloatArray = np.clip(released, 0.0, 1.0)
    return clipped


# Plane sheet ----------------------------------------------------------------------------


def _slab_released_long(tau: FloatArray, n_terms: int = _SLAB_LONG_TERMS) -> FloatArray:
    """Crank eq. 4.18 with L = 2l: 1 − Σ_{n≥0} 8/((2n+1)²π²) exp(−(2n+1)²π²τ), τ = Dt/L²."""
    m = 2.0 * np.arange(n_terms) + 1.0
    k2 = (m * math.pi) ** 2
    remaining = np.exp(-np.multiply.outer(tau, k2)) @ (8.0 / k2)
    released: FloatArray = 1.0 - remaining
    return released


def _slab_released_short(tau: FloatArray, n_terms: int = _SHORT_TERMS) -> FloatArray:
    """Crank eq. 4.20 with L = 2l: 4√τ (1/√π + 2 Σ_{n≥1} (−1)ⁿ ierfc(n / (2√τ))), τ = Dt/L²."""
    n = np.arange(1, n_terms + 1, dtype=np.float64)
    root = np.sqrt(tau)
    signs = np.where(n % 2 == 0, 1.0, -1.0)
    images = _ierfc(np.multiply.outer(1.0 / (2.0 * root), n)) @ signs
    released: FloatArray = 4.0 * root * (1.0 / math.sqrt(math.pi) + 2.0 * images)
    return released


def slab_released(t_s: ArrayLike, thickness_mm: float, diffusivity_mm2_s: float) -> FloatArray:
    """Fraction released from a plane sheet losing drug through both faces.

    With L the *full* thickness and τ = D t / L² (Crank 1975, eq. 4.18, written there with
    the half-thickness l = L/2)::

        M_t / M_∞ = 1 − Σ_{n=0}^{∞} 8 / ((2n+1)² π²) · exp(−(2n+1)² π² τ)

    and, for small τ (Crank eq. 4.20, the same solution summed by images)::

        M_t / M_∞ = 4 √τ · (1/√π + 2 Σ_{n=1}^{∞} (−1)ⁿ ierfc(n / (2√τ)))

    The second form is used below τ = 0.05 and the first above; both are exact to
    rounding there. 80 % is released at τ ≈ 0.1418 and the mean release time is
    L² / (12 D).

    Parameters
    ----------
    t_s : (...) float, s
        Times since the sheet met the sink; finite and at least 0.
    thickness_mm : float, mm
        Full thickness L of the sheet (not the half-thickness).
    diffusivity_mm2_s : float, mm²/s
        Effective diffusivity D of the drug in the matrix; 0 means nothing leaves.

    Returns
    -------
    released : (...) float, 0..1
        Fraction released at each time, shaped like ``t_s``; exactly 0 at t = 0.

    Raises
    ------
    ValueError
        If a time is negative or not finite, the thickness is not above 0 or the
        diffusivity is negative.
    """
    t = _times(t_s)
    length = _positive("thickness_mm", thickness_mm)
    d = _non_negative("diffusivity_mm2_s", diffusivity_mm2_s)
    tau = d * t / length**2
    return _by_tau(tau, _SLAB_SPHERE_SWITCH_TAU, _slab_released_short, _slab_released_long)


# Sphere ---------------------------------------------------------------------------------


def _sphere_released_long(tau: FloatArray, n_terms: int = _SPHERE_LONG_TERMS) -> FloatArray:
    """Crank eq. 6.20: 1 − (6/π²) Σ_{n≥1} n⁻² exp(−n²π²τ), τ = Dt/R²."""
    n = np.arange(1, n_terms + 1, dtype=np.float64)
    k2 = (n * math.pi) ** 2
    remaining = np.exp(-np.multiply.outer(tau, k2)) @ (6.0 / k2)
    released: FloatArray = 1.0 - remaining
    return released


def _sphere_released_short(tau: FloatArray, n_terms: int = _SHORT_TERMS) -> FloatArray:
    """Crank eq. 6.21: 6√τ (1/√π + 2 Σ_{n≥1} ierfc(n/√τ)) − 3τ, τ = Dt/R²."""
    n = np.arange(1, n_terms + 1, dtype=np.float64)
    root = np.sqrt(tau)
    images = _ierfc(np.multiply.outer(1.0 / root, n)).sum(axis=-1)
    released: FloatArray = 6.0 * root * (1.0 / math.sqrt(math.pi) + 2.0 * images) - 3.0 * tau
    return released


def sphere_released(t_s: ArrayLike, radius_mm: float, diffusivity_mm2_s: float) -> FloatArray:
    """Fraction released from a sphere losing drug through its whole surface.

    With τ = D t / R² (Crank 1975, eq. 6.20)::

        M_t / M_∞ = 1 − (6 / π²) Σ_{n=1}^{∞} n⁻² · exp(−n² π² τ)

    and, for small τ (Crank eq. 6.21)::

        M_t / M_∞ = 6 √τ · (1/√π + 2 Σ_{n=1}^{∞} ierfc(n / √τ)) − 3 τ

    The second form is used below τ = 0.05 and the first above; both are exact to
    rounding there. 80 % is released at τ ≈ 0.1135 and the mean release time is
    R² / (15 D).

    Parameters
    ----------
    t_s : (...) float, s
        Times since the sphere met the sink; finite and at least 0.
    radius_mm : float, mm
        Radius R of the sphere.
    diffusivity_mm2_s : float, mm²/s
        Effective diffusivity D; 0 means nothing leaves.

    Returns
    -------
    released : (...) float, 0..1
        Fraction released at each time, shaped like ``t_s``; exactly 0 at t = 0.

    Raises
    ------
    ValueError
        If a time is negative or not finite, the radius is not above 0 or the
        diffusivity is negative.
    """
    t = _times(t_s)
    radius = _positive("radius_mm", radius_mm)
    d = _non_negative("diffusivity_mm2_s", diffusivity_mm2_s)
    tau = d * t / radius**2
    return _by_tau(tau, _SLAB_SPHERE_SWITCH_TAU, _sphere_released_short, _sphere_released_long)


# Infinite cylinder ----------------------------------------------------------------------


@lru_cache(maxsize=4)
def _bessel_j0_roots(n_terms: int) -> FloatArray:
    """The first ``n_terms`` positive roots q_n of J₀, computed once and shared read-only."""
    roots = np.asarray(jn_zeros(0, n_terms), dtype=np.float64)
    roots.setflags(write=False)
    return roots


@lru_cache(maxsize=4)
def _cylinder_short_coefficients(n_terms: int) -> tuple[float, ...]:
    """Coefficients a_k of the short-time cylinder expansion Σ_k a_k τ^((k+1)/2).

    In Laplace space (Crank 1975, ch. 5) the uptake of a cylinder is
    M̄/M_∞ = 2 I₁(√p) / (p √p I₀(√p)) with τ as the time variable. Hankel's large-argument
    expansion I_ν(z) ~ e^z/√(2πz) Σ_j (−1)^j a_j(ν)/z^j, with
    a_j(ν) = Π_{i=1}^{j} (4ν² − (2i−1)²) / (j! 8^j), gives I₁/I₀ ~ Σ_k c_k z^(−k)
    (c = 1, −1/2, −1/8, −1/8, −25/128, …), and p^(−(k+3)/2) inverts to
    τ^((k+1)/2) / Γ((k+3)/2). The first three terms are Crank's
    4√(τ/π) − τ − τ^(3/2) / (3√π).
    """

    def hankel(mu: int, j: int) -> Fraction:
        product = Fraction(1)
        for i in range(1, j + 1):
            product *= mu - (2 * i - 1) ** 2
        sign = 1 if j % 2 == 0 else -1
        denominator: int = math.factorial(j) * 8**j
        return sign * product / denominator

    i1 = [hankel(4, j) for j in range(n_terms)]
    i0 = [hankel(0, j) for j in range(n_terms)]
    # Power-series division I₁/I₀ in 1/z, exact in rationals.
    ratio: list[Fraction] = []
    for k in range(n_terms):
        ratio.append(i1[k] - sum((i0[j] * ratio[k - j] for j in range(1, k + 1)), Fraction(0)))
    return tuple(2.0 * float(c) / math.gamma((k + 3) / 2.0) for k, c in enumerate(ratio))


def _cylinder_released_long(tau: FloatArray, n_terms: int = _CYLINDER_LONG_TERMS) -> FloatArray:
    """Crank eq. 5.52: 1 − Σ_{n≥1} (4/q_n²) exp(−q_n² τ), q_n the roots of J₀, τ = Dt/R²."""
    q2 = _bessel_j0_roots(n_terms) ** 2
    remaining = np.exp(-np.multiply.outer(tau, q2)) @ (4.0 / q2)
    released: FloatArray = 1.0 - remaining
    return released


def _cylinder_released_short(tau: FloatArray, n_terms: int = _CYLINDER_SHORT_TERMS) -> FloatArray:
    """Short-time expansion 4√(τ/π) − τ − τ^(3/2)/(3√π) − τ²/8 − …, τ = Dt/R²."""
    coefficients = np.asarray(_cylinder_short_coefficients(n_terms))
    powers = (np.arange(n_terms, dtype=np.float64) + 1.0) / 2.0
    released: FloatArray = np.power.outer(tau, powers) @ coefficients
    return released


def infinite_cylinder_released(
    t_s: ArrayLike, radius_mm: float, diffusivity_mm2_s: float
) -> FloatArray:
    """Fraction released from an infinitely long cylinder losing drug radially.

    With τ = D t / R² and q_n the positive roots of J₀ (``scipy.special.jn_zeros``)
    (Crank 1975, ch. 5, eq. 5.52)::

        M_t / M_∞ = 1 − Σ_{n=1}^{∞} (4 / q_n²) · exp(−q_n² τ)

    For small τ the series is replaced by Crank's short-time expansion
    ``4√(τ/π) − τ − τ^(3/2)/(3√π) − …``, carried here to ten terms (the further
    coefficients follow from the same Laplace-transform derivation; see
    ``_cylinder_short_coefficients``). It is used below τ = 1e-3, where it agrees with the
    series to about 1e-16. 80 % is released at τ ≈ 0.2147 and the mean release time is
    R² / (8 D).

    Parameters
    ----------
    t_s : (...) float, s
        Times since the cylinder met the sink; finite and at least 0.
    radius_mm : float, mm
        Radius R of the cylinder.
    diffusivity_mm2_s : float, mm²/s
        Effective diffusivity D; 0 means nothing leaves.

    Returns
    -------
    released : (...) float, 0..1
        Fraction released at each time, shaped like ``t_s``; exactly 0 at t = 0.

    Raises
    ------
    ValueError
        If a time is negative or not finite, the radius is not above 0 or the
        diffusivity is negative.
    """
    t = _times(t_s)
    radius = _positive("radius_mm", radius_mm)
    d = _non_negative("diffusivity_mm2_s", diffusivity_mm2_s)
    tau = d * t / radius**2
    return _by_tau(tau, _CYLINDER_SWITCH_TAU, _cylinder_released_short, _cylinder_released_long)


# Finite cylinder: the tablet ------------------------------------------------------------


def finite_cylinder_released(
    t_s: ArrayLike, radius_mm: float, height_mm: float, diffusivity_mm2_s: float
) -> FloatArray:
    """Fraction released from a cylinder of finite height, through all its faces.

    With a uniform initial concentration and zero concentration on every face, the
    concentration in a finite cylinder is the product of the plane-sheet solution across
    its height and the infinite-cylinder solution across its radius (the diffusion
    equation separates in r and z), and integrating over the volume gives the same
    product for the fraction *remaining*::

        1 − M_t / M_∞ = (1 − F_slab(t; L = H)) · (1 − F_cyl(t; R))

    with F_slab from :func:`slab_released` (full thickness = height H, both end faces
    exposed) and F_cyl from :func:`infinite_cylinder_released`.

    Parameters
    ----------
    t_s : (...) float, s
        Times since the tablet met the sink; finite and at least 0.
    radius_mm : float, mm
        Radius R of the cylinder.
    height_mm : float, mm
        Height H of the cylinder (axial length).
    diffusivity_mm2_s : float, mm²/s
        Effective diffusivity D, the same in every direction; 0 means nothing leaves.

    Returns
    -------
    released : (...) float, 0..1
        Fraction released at each time, shaped like ``t_s``; exactly 0 at t = 0.

    Raises
    ------
    ValueError
        If a time is negative or not finite, a size is not above 0 or the diffusivity is
        negative.
    """
    slab_remaining = 1.0 - slab_released(t_s, height_mm, diffusivity_mm2_s)
    radial_remaining = 1.0 - infinite_cylinder_released(t_s, radius_mm, diffusivity_mm2_s)
    released: FloatArray = 1.0 - slab_remaining * radial_remaining
    return released


def eroding_cylinder_released(
    t_s: ArrayLike, radius_mm: float, height_mm: float, erosion_rate_mm_h: float
) -> FloatArray:
    """Fraction released from a cylinder whose surface erodes at a constant rate.

    Assumptions: every exposed face (the curved side and both ends) recedes at the same
    constant speed k; drug leaves only with the matrix that erodes, at once, and nothing
    diffuses out of the uneroded core. The fraction remaining is then the volume left::

        1 − M_t / M_∞ = (1 − k t / R)² · (1 − 2 k t / H)

    each factor clipped at 0, so release is complete at t = min(R / k, H / (2k)). This is
    the cylinder case of Hopfenberg's surface-erosion model (H. B. Hopfenberg, in
    *Controlled Release Polymeric Formulations*, ACS Symp. Ser. 33, 1976, pp. 26–32), with
    the axial and radial recession written separately.

    Parameters
    ----------
    t_s : (...) float, s
        Times since the tablet met the medium; finite and at least 0.
    radius_mm : float, mm
        Initial radius R.
    height_mm : float, mm
        Initial height H.
    erosion_rate_mm_h : float, mm/h
        Speed k at which each face recedes; 0 means no erosion. Converted to mm/s here.

    Returns
    -------
    released : (...) float, 0..1
        Fraction released at each time, shaped like ``t_s``; exactly 0 at t = 0.

    Raises
    ------
    ValueError
        If a time is negative or not finite, a size is not above 0 or the rate is negative.
    """
    t = _times(t_s)
    radius = _positive("radius_mm", radius_mm)
    height = _positive("height_mm", height_mm)
    rate_mm_s = _non_negative("erosion_rate_mm_h", erosion_rate_mm_h) / SECONDS_PER_HOUR
    receded_mm = rate_mm_s * t
    # Once a dimension has eroded away the tablet is gone: clip before squaring so the
    # radial factor cannot come back up as (negative)².
    radial = np.clip(1.0 - receded_mm / radius, 0.0, 1.0)
    axial = np.clip(1.0 - 2.0 * receded_mm / height, 0.0, 1.0)
    released: FloatArray = 1.0 - radial**2 * axial
    return released


def cylinder_released(
    t_s: ArrayLike,
    radius_mm: float,
    height_mm: float,
    diffusivity_mm2_s: float,
    mechanism: ReleaseMechanism = "diffusion",
    erosion_rate_mm_h: float = 0.0,
) -> FloatArray:
    """Fraction released from a cylindrical tablet by the formulation's mechanism.

    * ``"diffusion"``: :func:`finite_cylinder_released`.
    * ``"erosion"``: :func:`eroding_cylinder_released`; the diffusivity is not used.
    * ``"diffusion+erosion"``: the two fractions *remaining* are multiplied,
      ``1 − (1 − F_diff)(1 − F_eros)``. This is an approximation, not a solution of the
      moving-boundary problem: it treats the two as independent ways for the drug to
      leave, computes diffusion over the initial (uneroded) dimensions, and ignores that
      erosion shortens the diffusion path and removes the depleted outer layer first. It
      is exact only when one of the two is negligible.

    Parameters
    ----------
    t_s : (...) float, s
        Times since the tablet met the medium; finite and at least 0.
    radius_mm : float, mm
        Radius R of the tablet.
    height_mm : float, mm
        Height H of the tablet.
    diffusivity_mm2_s : float, mm²/s
        Effective diffusivity D (used by the diffusion mechanisms).
    mechanism : {"diffusion", "erosion", "diffusion+erosion"}
        How the formulation releases its drug.
    erosion_rate_mm_h : float, mm/h
        Surface recession speed (used by the erosion mechanisms).

    Returns
    -------
    released : (...) float, 0..1
        Fraction released at each time, shaped like ``t_s``; exactly 0 at t = 0.

    Raises
    ------
    ValueError
        If the mechanism is unknown, or an input is out of range as described in the
        functions it dispatches to.
    """
    if mechanism == "diffusion":
        return finite_cylinder_released(t_s, radius_mm, height_mm, diffusivity_mm2_s)
    if mechanism == "erosion":
        return eroding_cylinder_released(t_s, radius_mm, height_mm, erosion_rate_mm_h)
    if mechanism == "diffusion+erosion":
        diffusion = finite_cylinder_released(t_s, radius_mm, height_mm, diffusivity_mm2_s)
        erosion = eroding_cylinder_released(t_s, radius_mm, height_mm, erosion_rate_mm_h)
        released: FloatArray = 1.0 - (1.0 - diffusion) * (1.0 - erosion)
        return released
    raise ValueError(
        f"unknown release mechanism {mechanism!r}; expected diffusion, erosion or diffusion+erosion"
    )
