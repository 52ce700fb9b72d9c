"""The FLP of draft-irtf-cfrg-vdaf-20 §7.3 (BBCGGI19 §4.2): prove, query, decide.

The prover interpolates, per gadget, one wire polynomial per input wire (the
wire seed from the prover randomness at ``alpha^0``, then call ``k``'s input at
``alpha^k``) and sends the wire seeds and the gadget polynomial's first
``gadget_poly_len`` Lagrange values. A verifier holding shares of the
measurement and proof recomputes the wires, reads each call's output off the
gadget polynomial, and outputs (a share of) the circuit output reduced by the
query randomness, plus each wire polynomial and the gadget polynomial evaluated
at a random point ``t``; ``decide`` checks the output is zero and that the
gadget applied to the wire evaluations equals the gadget evaluation.
"""

from __future__ import annotations

from pets.vdaf.circuits import Valid
from pets.vdaf.errors import VdafVerifyError
from pets.vdaf.gadgets import gadget_poly_len, wire_poly_len
from pets.vdaf.poly import dot, extend_values, lagrange_coeffs_multi, next_power_of_2


class Flp:
    """FLP parameters and algorithms for one validity circuit."""

    def __init__(self, valid: Valid) -> None:
        self.valid = valid
        self.field = valid.field
        self.JOINT_RAND_LEN = valid.JOINT_RAND_LEN
        self.MEAS_LEN = valid.MEAS_LEN
        self.OUTPUT_LEN = valid.OUTPUT_LEN
        self.PROVE_RAND_LEN = sum(g.ARITY for g in valid.GADGETS)
        self.QUERY_RAND_LEN = len(valid.GADGETS) + (
            valid.EVAL_OUTPUT_LEN if valid.EVAL_OUTPUT_LEN > 1 else 0
        )
        self._layout = []  # per gadget: (wire_len p, sent gadget_poly_len, full size, step)
        proof_len = 0
        for g, calls in zip(valid.GADGETS, valid.GADGET_CALLS, strict=True):
            p = wire_poly_len(calls)
            glen = gadget_poly_len(g.DEGREE, p)
            size = next_power_of_2(glen)
            self._layout.append((p, glen, size, size // p))
            proof_len += g.ARITY + glen
        self.PROOF_LEN = proof_len
        self.VERIFIER_LEN = 1 + sum(g.ARITY + 1 for g in valid.GADGETS)

    def prove(self, meas: list[int], prove_rand: list[int], joint_rand: list[int]) -> list[int]:
        valid = self.valid
        field = self.field
        all_wires = valid.wires(meas, joint_rand, 1)
        proof: list[int] = []
        pos = 0
        for g, wires, (p, glen, _size, _step) in zip(
            valid.GADGETS, all_wires, self._layout, strict=True
        ):
            seeds = prove_rand[pos : pos + g.ARITY]
            pos += g.ARITY
            polys = []
            for seed, w in zip(seeds, wires, strict=True):
                polys.append([seed, *w] + [0] * (p - 1 - len(w)))
            proof += seeds
            proof += g.eval_poly(field, polys)[:glen]
        return proof

    def query(
        self,
        meas: list[int],
        proof: list[int],
        query_rand: list[int],
        joint_rand: list[int],
        num_shares: int,
    ) -> list[int]:
        valid = self.valid
        field = self.field
        modulus = field.P
        gadget_outs = []
        gadget_polys = []
        seeds_all = []
        pos = 0
        for g, calls, (_p, glen, size, step) in zip(
            valid.GADGETS, valid.GADGET_CALLS, self._layout, strict=True
        ):
            seeds_all.append(proof[pos : pos + g.ARITY])
            pos += g.ARITY
            gpoly = extend_values(field, proof[pos : pos + glen], size)
            pos += glen
            gadget_polys.append(gpoly)
            gadget_outs.append([gpoly[(k + 1) * step] for k in range(calls)])
        out = valid.outputs(meas, joint_rand, num_shares, gadget_outs)

        if valid.EVAL_OUTPUT_LEN > 1:
            rand = query_rand[: valid.EVAL_OUTPUT_LEN]
            query_rand = query_rand[valid.EVAL_OUTPUT_LEN :]
            v = sum(r * o for r, o in zip(rand, out, strict=True)) % modulus
        else:
            v = out[0]

        verifier = [v]
        lagranges = []
        gadget_checks = []
        for t, gpoly, (p, _glen, size, _step) in zip(
            query_rand, gadget_polys, self._layout, strict=False
        ):
            if pow(t, p, modulus) == 1:
                raise VdafVerifyError("verify_init", "test point is a root of unity")
            wire_lag, gadget_lag = lagrange_coeffs_multi(field, (p, size), t)
            lagranges.append(wire_lag)
            gadget_checks.append(dot(field, gadget_lag, gpoly))
        wire_checks = valid.wire_checks(meas, joint_rand, num_shares, seeds_all, lagranges)
        for checks, gcheck in zip(wire_checks, gadget_checks, strict=True):
            verifier += checks
            verifier.append(gcheck)
        if self.field.ENCODED_SIZE == 8:  # numpy encodes Field64: plain ints
            return [int(x) for x in verifier]
        return verifier  # ints and mpz, which encode alike (to_bytes) and compare equal

    def decide(self, verifier: list[int]) -> bool:
        if verifier[0] != 0:
            return False
        pos = 1
        for g in self.valid.GADGETS:
            wire_checks = verifier[pos : pos + g.ARITY]
            pos += g.ARITY
            if g.eval(self.field, wire_checks) != verifier[pos]:
                return False
            pos += 1
        return True
