"""Sigma protocols for linear relations, with AND / OR composition (zksk-style).

A *statement* is built from discrete-log representations and composed with
``&`` and ``|``::

    x, r = Secret("x"), Secret("r")
    stmt = DLRep(C, x * V + r * G) & DLRep(Y, x * H)   # same x in both
    proof = stmt.prove({x: 42, r: blinding})            # prover role
    stmt.verify(proof)                                  # verifier role: None or raises

This covers Schnorr (Y = x*G), Chaum-Pedersen DLEQ, Pedersen openings,
equalities and linear relations between committed values. ``|`` is the
Cramer-Damgard-Schoenmakers OR composition (CRYPTO 1994): the prover
simulates every branch but one, and the branch challenges must sum to the
overall challenge.

Scoping of secrets: within a conjunction a :class:`Secret` used twice denotes
the same value (one response). Each branch of an OR is an independent
sub-proof with its own responses, so a secret is only bound where one
response covers every use. Hence, checked when the statement is compiled:

* the same ``Secret`` may appear in several branches of *one* OR (they are
  alternatives: only one branch is real, the others are simulated);
* a secret used *outside* an OR must not also appear inside it, and a secret
  must not appear in two *different* ORs of one conjunction (e.g.
  ``(A(x) | B) & (C(x) | D)``): the two ORs would each get their own
  response for x, so a prover could use x = 5 in one and x = 7 in the other.
  Both are refused with :class:`~pets.errors.InvalidInputError` rather than
  silently proved as independent witnesses. (Formally: for any two scopes
  using a secret, their lowest common ancestor must be an OR node.)

The non-interactive proof uses the compact (challenge, responses) form: the
verifier recomputes every commitment as ``sum(z_j * B_j) - c * lhs`` and
checks that hashing the whole statement and those commitments gives back
``c``. Serialisation is a flat sequence of canonical 32-byte scalars: the
challenge, then per scope its responses followed by, for each nested OR, the
sub-challenges of all branches but the last and each branch's data. The
statement fixes the layout, so :meth:`Statement.verify` rejects any other
length. Transcript: :class:`pets.zk.transcript.Transcript` absorbs the group
name, context bytes, a full description of the statement (structure, every
base, every left-hand side) and all commitments before the challenge.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pets.errors import InvalidInputError, InvalidProofError
from pets.zk.curve import SCALAR_BYTES, N
from pets.zk.group import Point
from pets.zk.rng import DEFAULT_RNG, RandomSource
from pets.zk.transcript import Transcript

if TYPE_CHECKING:
    from pets.zk.group import Group

DEFAULT_LABEL = b"pets/zk/sigma/v1"


class Secret:
    """A named witness variable; identity (not the name) decides equality."""

    __slots__ = ("name",)

    def __init__(self, name: str = "x") -> None:
        self.name = name

    def __mul__(self, base: Point) -> Expression:
        if not isinstance(base, Point):
            return NotImplemented
        return Expression(((self, base),))

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return f"Secret({self.name!r})"


@dataclass(frozen=True)
class Expression:
    """A formal sum ``x_1 * B_1 + ... + x_k * B_k`` of secrets times public bases."""

    terms: tuple[tuple[Secret, Point], ...]

    def __add__(self, other: Expression) -> Expression:
        if not isinstance(other, Expression):
            return NotImplemented
        return Expression(self.terms + other.terms)


class Statement:
    """Base class of composable statements (:class:`DLRep`, :class:`And`, :class:`Or`)."""

    def __and__(self, other: Statement) -> And:
        return And(self, other)

    def __or__(self, other: Statement) -> Or:
        return Or(self, other)

    # -- compilation (cached) ----------------------------------------------------

    def _compiled(self) -> _Scope:
        cached = getattr(self, "_cache", None)
        if cached is None:
            cached = _compile(self)
            object.__setattr__(self, "_cache", cached)
        return cached

    @property
    def group(self) -> Group:
        return self._compiled().group

    @property
    def proof_size(self) -> int:
        """Number of 32-byte scalars in a proof of this statement (challenge included)."""
        return 1 + self._compiled().size

    # -- prover role ---------------------------------------------------------------

    def prove(
        self,
        witness: Mapping[Secret, int],
        *,
        context: bytes = b"",
        rng: RandomSource = DEFAULT_RNG,
        transcript: Transcript | None = None,
    ) -> SigmaProof:
        """Non-interactive proof that the prover knows ``witness`` satisfying the statement.

        Raises :class:`InvalidInputError` if the witness does not satisfy it
        (so an honest mistake never produces a proof that fails later).
        """
        root = self._compiled()
        choice: dict[int, int] = {}
        if not _satisfied(root, witness, choice):
            raise InvalidInputError("the witness does not satisfy the statement")
        t = _start_transcript(root, context, transcript)
        commitments: list[Point] = []
        state = _commit(root, witness, choice, rng, commitments)
        t.append_points(b"commitments", commitments)
        c = t.challenge()
        out: list[int] = [c]
        _respond(root, state, c, witness, out)
        return SigmaProof(tuple(out))

    # -- verifier role -------------------------------------------------------------

    def verify(
        self,
        proof: SigmaProof | bytes,
        *,
        context: bytes = b"",
        transcript: Transcript | None = None,
    ) -> None:
        """Return None if ``proof`` is valid for this statement, else raise InvalidProofError."""
        if not isinstance(proof, SigmaProof):
            proof = SigmaProof.from_bytes(proof)
        root = self._compiled()
        if len(proof.scalars) != 1 + root.size:
            raise InvalidProofError("proof has the wrong length for this statement")
        c = proof.scalars[0]
        commitments: list[Point] = []
        _recompute(root, c, iter(proof.scalars[1:]), commitments)
        check_challenge(
            transcript if transcript is not None else Transcript(DEFAULT_LABEL),
            root.group,
            context,
            root.description,
            commitments,
            c,
        )


def check_challenge(
    transcript: Transcript,
    group: Group,
    context: bytes,
    description: bytes,
    commitments: Sequence[Point],
    challenge: int,
) -> None:
    """Final verifier step, shared with specialised verifiers (e.g. range proofs).

    Absorbs exactly what :meth:`Statement.prove` absorbed and compares the
    recomputed challenge with the proof's; raises InvalidProofError on mismatch.
    """
    t = transcript.copy()
    t.append_bytes(b"group", group.curve_name.encode())
    t.append_bytes(b"context", bytes(context))
    t.append_bytes(b"statement", description)
    t.append_points(b"commitments", commitments)
    expected = t.challenge()
    if not hmac.compare_digest(expected.to_bytes(32, "big"), challenge.to_bytes(32, "big")):
        raise InvalidProofError("proof does not verify")


class DLRep(Statement):
    """``lhs = sum(x_j * B_j)``: knowledge of a discrete-log representation."""

    def __init__(self, lhs: Point, expr: Expression | Sequence[tuple[Secret, Point]]) -> None:
        terms = expr.terms if isinstance(expr, Expression) else tuple(expr)
        if not terms:
            raise InvalidInputError("a DLRep needs at least one term")
        self.lhs = lhs
        self.terms = terms


class And(Statement):
    """Conjunction: all sub-statements hold, secrets shared by identity."""

    children: tuple[Statement, ...]

    def __init__(self, *children: Statement) -> None:
        flat: list[Statement] = []
        for child in children:
            flat.extend(child.children if isinstance(child, And) else [child])
        if not flat:
            raise InvalidInputError("an And needs at least one sub-statement")
        self.children = tuple(flat)


class Or(Statement):
    """Disjunction (CDS94): at least one sub-statement holds; which one stays hidden."""

    children: tuple[Statement, ...]

    def __init__(self, *children: Statement) -> None:
        flat: list[Statement] = []
        for child in children:
            flat.extend(child.children if isinstance(child, Or) else [child])
        if len(flat) < 2:
            raise InvalidInputError("an Or needs at least two sub-statements")
        self.children = tuple(flat)


@dataclass(frozen=True)
class SigmaProof:
    """Compact sigma proof: the challenge then the responses / sub-challenges, as scalars."""

    scalars: tuple[int, ...]

    def to_bytes(self) -> bytes:
        return b"".join(k.to_bytes(SCALAR_BYTES, "big") for k in self.scalars)

    @classmethod
    def from_bytes(cls, data: bytes) -> SigmaProof:
        """Strict parse: a non-empty multiple of 32 bytes, every scalar canonical (< n)."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidProofError("malformed proof: expected bytes")
        data = bytes(data)
        if not data or len(data) % SCALAR_BYTES:
            raise InvalidProofError("malformed proof: length is not a multiple of 32 bytes")
        scalars = tuple(
            int.from_bytes(data[i : i + SCALAR_BYTES], "big")
            for i in range(0, len(data), SCALAR_BYTES)
        )
        if any(k >= N for k in scalars):
            raise InvalidProofError("malformed proof: non-canonical scalar")
        return cls(scalars)


# ---------------------------------------------------------------------------------------
# Compiled form: a tree of scopes. A scope is a conjunction not crossing an Or; its
# secrets get one response each. Or nodes hold one child scope per branch.


class _Rep:
    __slots__ = ("lhs", "terms")

    def __init__(self, lhs: Point, terms: list[tuple[int, Point]]) -> None:
        self.lhs = lhs
        self.terms = terms  # (index of the secret in its scope, base)


class _OrNode:
    __slots__ = ("branches",)

    def __init__(self, branches: list[_Scope]) -> None:
        self.branches = branches


class _Scope:
    __slots__ = ("description", "group", "items", "secrets", "size")

    def __init__(self) -> None:
        self.secrets: list[Secret] = []
        self.items: list[_Rep | _OrNode] = []
        self.size = 0  # scalars this scope contributes to the proof
        self.group: Group
        self.description = b""


#: Position of a scope in the tree: one (Or node number, branch index) per Or above it.
_Path = tuple[tuple[int, int], ...]


def _check_or_scoping(uses: Mapping[int, list[tuple[Secret, _Path]]]) -> None:
    """Refuse a secret used in two scopes whose lowest common ancestor is not an Or node."""
    for places in uses.values():
        for i, (secret, p) in enumerate(places):
            for _, q in places[i + 1 :]:
                common = 0
                while common < min(len(p), len(q)) and p[common] == q[common]:
                    common += 1
                if common < min(len(p), len(q)) and p[common][0] == q[common][0]:
                    continue  # different branches of one Or: alternatives
                raise InvalidInputError(
                    f"secret {secret.name!r} is used in two different Or statements of one "
                    "conjunction; each Or would prove its own value for it, so the statement "
                    "is refused (use one Or over the combined cases, or separate secrets)"
                )


def _compile(stmt: Statement) -> _Scope:
    groups: set[int] = set()
    group_ref: list[Group] = []
    uses: dict[int, list[tuple[Secret, _Path]]] = {}
    or_count = [0]

    def build(node: Statement, outer: frozenset[int], path: _Path) -> _Scope:
        scope = _Scope()
        index: dict[int, int] = {}
        pending_ors: list[tuple[_OrNode, Or]] = []

        def walk(n: Statement) -> None:
            if isinstance(n, DLRep):
                terms = []
                for secret, base in n.terms:
                    if not isinstance(secret, Secret) or not isinstance(base, Point):
                        raise InvalidInputError("DLRep terms must be (Secret, Point) pairs")
                    if id(secret) in outer:
                        raise InvalidInputError(
                            f"secret {secret.name!r} is used both outside and inside an Or"
                        )
                    if id(secret) not in index:
                        index[id(secret)] = len(scope.secrets)
                        scope.secrets.append(secret)
                    terms.append((index[id(secret)], base))
                    _note_group(base)
                _note_group(n.lhs)
                scope.items.append(_Rep(n.lhs, terms))
            elif isinstance(n, And):
                for child in n.children:
                    walk(child)
            elif isinstance(n, Or):
                placeholder = _OrNode([])
                scope.items.append(placeholder)
                pending_ors.append((placeholder, n))
            else:
                raise InvalidInputError(f"not a statement: {type(n).__name__}")

        walk(node)
        for secret in scope.secrets:
            uses.setdefault(id(secret), []).append((secret, path))
        inner_outer = outer | {id(s) for s in scope.secrets}
        for placeholder, or_stmt in pending_ors:
            or_count[0] += 1
            number = or_count[0]
            placeholder.branches = [
                build(child, inner_outer, (*path, (number, j)))
                for j, child in enumerate(or_stmt.children)
            ]
        scope.size = len(scope.secrets) + sum(
            len(item.branches) - 1 + sum(b.size for b in item.branches)
            for item in scope.items
            if isinstance(item, _OrNode)
        )
        return scope

    def _note_group(point: Point) -> None:
        if not isinstance(point, Point):
            raise InvalidInputError("statement points must be Point objects")
        if id(point.group) not in groups:
            groups.add(id(point.group))
            group_ref.append(point.group)

    root = build(stmt, frozenset(), ())
    _check_or_scoping(uses)
    if len(group_ref) != 1:
        raise InvalidInputError("all points of a statement must come from one group backend")
    root.group = group_ref[0]
    root.description = _describe(root)
    return root


def _describe(scope: _Scope) -> bytes:
    """Unambiguous byte description of the statement: structure, bases, left-hand sides."""
    parts = [b"S", len(scope.secrets).to_bytes(2, "big"), len(scope.items).to_bytes(2, "big")]
    for item in scope.items:
        if isinstance(item, _Rep):
            parts.append(b"D" + len(item.terms).to_bytes(2, "big"))
            for idx, base in item.terms:
                parts.append(idx.to_bytes(2, "big") + _fixed(base))
            parts.append(_fixed(item.lhs))
        else:
            parts.append(b"O" + len(item.branches).to_bytes(2, "big"))
            parts.extend(_describe(branch) for branch in item.branches)
    return b"".join(parts)


def single_secret_branch(base: Point, lhs: Point) -> bytes:
    """Description of a scope holding one ``DLRep(lhs, s * base)`` (for specialised verifiers)."""
    return b"S\x00\x01\x00\x01D\x00\x01\x00\x00" + _fixed(base) + _fixed(lhs)


def _fixed(point: Point) -> bytes:
    enc = point.to_bytes()
    return enc if len(enc) == 33 else enc + bytes(32)  # identity padded to a fixed width


def _start_transcript(root: _Scope, context: bytes, transcript: Transcript | None) -> Transcript:
    t = transcript.copy() if transcript is not None else Transcript(DEFAULT_LABEL)
    t.append_bytes(b"group", root.group.curve_name.encode())
    t.append_bytes(b"context", bytes(context))
    t.append_bytes(b"statement", root.description)
    return t


def _satisfied(scope: _Scope, witness: Mapping[Secret, int], choice: dict[int, int]) -> bool:
    """Whether the witness satisfies ``scope``; records the true branch of every Or.

    Works the same whatever the witness: every equation and every branch is
    evaluated with :meth:`Group.lincomb_secret` (``ecmult_gen`` on G, blinded
    uniform scalars elsewhere) and no early exit, so the time a proof takes
    reveals neither the witness's values nor which branch is true (e.g. a
    committed bit). Nonces go through the same function in :func:`_commit`.
    """
    if any(s not in witness for s in scope.secrets):
        return False
    values = [witness[s] % N for s in scope.secrets]
    ok = True
    for item in scope.items:
        if isinstance(item, _Rep):
            group = item.lhs.group
            lhs = group.lincomb_secret((values[i], base) for i, base in item.terms)
            ok &= lhs == item.lhs
        else:
            holds = [_satisfied(branch, witness, choice) for branch in item.branches]
            if any(holds):
                choice[id(item)] = holds.index(True)
            ok &= any(holds)
    return ok


def _random_scalar(rng: RandomSource) -> int:
    return 1 + rng.randbelow(N - 1)


def _commit(
    scope: _Scope,
    witness: Mapping[Secret, int],
    choice: dict[int, int],
    rng: RandomSource,
    commitments: list[Point],
) -> list:
    """Honest commitments for a scope the witness satisfies; returns the prover state."""
    nonces = [_random_scalar(rng) for _ in scope.secrets]
    or_states: list[tuple[int, list]] = []
    for item in scope.items:
        if isinstance(item, _Rep):
            group = item.lhs.group
            commitments.append(group.lincomb_secret((nonces[i], base) for i, base in item.terms))
        else:
            real = choice[id(item)]
            branch_states: list = []
            for j, branch in enumerate(item.branches):
                if j == real:
                    branch_states.append(_commit(branch, witness, choice, rng, commitments))
                else:
                    c_j = rng.randbelow(N)
                    fake = [rng.randbelow(N) for _ in range(branch.size)]
                    _recompute(branch, c_j, iter(fake), commitments)
                    branch_states.append((c_j, fake))
            or_states.append((real, branch_states))
    return [nonces, or_states]


def _respond(
    scope: _Scope, state: list, c: int, witness: Mapping[Secret, int], out: list[int]
) -> None:
    nonces, or_states = state
    out.extend((k + c * witness[s]) % N for k, s in zip(nonces, scope.secrets, strict=True))
    ors = (item for item in scope.items if isinstance(item, _OrNode))
    for item, (real, branch_states) in zip(ors, or_states, strict=True):
        fake_sum = sum(bs[0] for j, bs in enumerate(branch_states) if j != real)
        c_real = (c - fake_sum) % N
        sub = [c_real if j == real else bs[0] for j, bs in enumerate(branch_states)]
        out.extend(sub[:-1])
        for j, (branch, bs) in enumerate(zip(item.branches, branch_states, strict=True)):
            if j == real:
                _respond(branch, bs, c_real, witness, out)
            else:
                out.extend(bs[1])


def _recompute(scope: _Scope, c: int, reader: Iterator[int], commitments: list[Point]) -> None:
    """Verifier side: commitments implied by challenge ``c`` and the proof scalars."""
    z = [next(reader) for _ in scope.secrets]
    neg_c = (-c) % N
    for item in scope.items:
        if isinstance(item, _Rep):
            terms = [(z[i], base) for i, base in item.terms]
            terms.append((neg_c, item.lhs))
            commitments.append(item.lhs.group.lincomb(terms))
        else:
            subs = [next(reader) for _ in range(len(item.branches) - 1)]
            subs.append((c - sum(subs)) % N)
            for branch, c_b in zip(item.branches, subs, strict=True):
                _recompute(branch, c_b, reader, commitments)
