//! J-PAKE (RFC 8236) over the prime-order decaf448 group, with Schnorr NIZK
//! proofs (RFC 8235).
//!
//! Differences from the RFCs, all deliberate: the prover "identity" is its
//! position in the handshake (initiator or responder), which the two sides can
//! never share; every challenge also binds the role name and a transcript hash
//! (the session, the suite offer or choice, and everything before it); and the
//! explicit key confirmation of round 3 is replaced by the role authenticator
//! keyed from the J-PAKE key, so a wrong password surfaces as exactly one failed
//! authenticator.

use ed448_goldilocks::Scalar;
use ed448_goldilocks::decaf::{CompressedDecaf, DecafPoint};
use subtle::ConstantTimeEq;

use crate::codec::{Reader, Writer};
use crate::error::DecodeError;
use crate::primitives::{HASH_LEN, Secret, hash, mac};
use crate::roles::{Password, RoleName};

pub(crate) const POINT_LEN: usize = 56;
pub(crate) const SCALAR_LEN: usize = 56;

/// Which side made a proof. Part of every challenge, so a proof can never be
/// reflected back to the side that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Position {
    Initiator,
    Responder,
}

impl Position {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Initiator => b"initiator",
            Self::Responder => b"responder",
        }
    }

    pub(crate) fn peer(self) -> Self {
        match self {
            Self::Initiator => Self::Responder,
            Self::Responder => Self::Initiator,
        }
    }
}

/// Why a J-PAKE run was aborted. Any of these means an active attacker (an
/// honest peer with a wrong password produces valid proofs).
pub(crate) type JpakeFailure = &'static str;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Proof {
    commitment: [u8; POINT_LEN],
    response: [u8; SCALAR_LEN],
}

/// The public half of round 1: two points and their proofs of knowledge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Round1 {
    pub(crate) role: RoleName,
    first: [u8; POINT_LEN],
    first_proof: Proof,
    second: [u8; POINT_LEN],
    second_proof: Proof,
}

/// The public half of round 2: one point and its proof over the combined generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Round2 {
    pub(crate) role: RoleName,
    point: [u8; POINT_LEN],
    proof: Proof,
}

/// One J-PAKE run for one password role, from one side's point of view.
pub(crate) struct JpakeRun {
    role: RoleName,
    position: Position,
    password_scalar: Secret<SCALAR_LEN>,
    second_secret: Secret<SCALAR_LEN>,
    first: [u8; POINT_LEN],
    second: [u8; POINT_LEN],
    peer: Option<([u8; POINT_LEN], [u8; POINT_LEN])>,
}

impl core::fmt::Debug for JpakeRun {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("JpakeRun")
            .field("role", &self.role)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl JpakeRun {
    /// Round 1: fresh x1, x2 and their proofs, bound to `context`.
    pub(crate) fn start(
        role: RoleName,
        password: &Password,
        position: Position,
        context: &[u8; HASH_LEN],
    ) -> Result<(Self, Round1), getrandom::Error> {
        let password_scalar = password_scalar(&role, password);
        let first_secret = random_scalar()?;
        let second_secret = random_scalar()?;
        let generator = DecafPoint::generator();
        let first = encode(&(&generator * &scalar(&first_secret)));
        let second = encode(&(&generator * &scalar(&second_secret)));
        let first_proof = prove(&generator, &first_secret, &first, position, &role, context)?;
        let second_proof = prove(
            &generator,
            &second_secret,
            &second,
            position,
            &role,
            context,
        )?;
        let round1 = Round1 {
            role: role.clone(),
            first,
            first_proof,
            second,
            second_proof,
        };
        // x1 is needed only for its proof; it is dropped (zeroized) here.
        let run = Self {
            role,
            position,
            password_scalar,
            second_secret,
            first,
            second,
            peer: None,
        };
        Ok((run, round1))
    }

    pub(crate) fn role(&self) -> &RoleName {
        &self.role
    }

    /// Checks the peer's round 1 (points not the identity, both proofs valid
    /// for the peer's position) and remembers its points.
    pub(crate) fn receive_round1(
        &mut self,
        peer: &Round1,
        context: &[u8; HASH_LEN],
    ) -> Result<(), JpakeFailure> {
        let generator = DecafPoint::generator();
        let peer_position = self.position.peer();
        let first =
            decode_non_identity(&peer.first).ok_or("round-1 point is the identity or invalid")?;
        let second =
            decode_non_identity(&peer.second).ok_or("round-1 point is the identity or invalid")?;
        verify(
            &generator,
            &first,
            &peer.first,
            &peer.first_proof,
            peer_position,
            &self.role,
            context,
        )?;
        verify(
            &generator,
            &second,
            &peer.second,
            &peer.second_proof,
            peer_position,
            &self.role,
            context,
        )?;
        if peer.first == self.first || peer.second == self.second {
            return Err("peer echoed this side's round-1 points");
        }
        self.peer = Some((peer.first, peer.second));
        Ok(())
    }

    /// Round 2: A = (X1 + X3 + X4) * (x2 * s), with its proof.
    pub(crate) fn round2(&self, context: &[u8; HASH_LEN]) -> Result<Round2, JpakeFailure> {
        let (peer_first, peer_second) = self.peer.ok_or("round 2 before the peer's round 1")?;
        let generator = sum(&[&self.first, &peer_first, &peer_second])?;
        let exponent =
            Secret::new((scalar(&self.second_secret) * scalar(&self.password_scalar)).to_bytes());
        let point = encode(&(&generator * &scalar(&exponent)));
        let proof = prove(
            &generator,
            &exponent,
            &point,
            self.position,
            &self.role,
            context,
        )
        .map_err(|_| "random number generator failed")?;
        Ok(Round2 {
            role: self.role.clone(),
            point,
            proof,
        })
    }

    /// Checks the peer's round 2 over its generator (X3 + X1 + X2) and derives
    /// the role key from K = (B - X4 * (x2 * s)) * x2. The raw K never leaves.
    pub(crate) fn finish(
        &self,
        peer: &Round2,
        context: &[u8; HASH_LEN],
    ) -> Result<Secret<HASH_LEN>, JpakeFailure> {
        let (peer_first, peer_second) = self.peer.ok_or("round 2 before the peer's round 1")?;
        let generator = sum(&[&peer_first, &self.first, &self.second])?;
        let point =
            decode_non_identity(&peer.point).ok_or("round-2 point is the identity or invalid")?;
        verify(
            &generator,
            &point,
            &peer.point,
            &peer.proof,
            self.position.peer(),
            &self.role,
            context,
        )?;
        let peer_second =
            decode_non_identity(&peer_second).ok_or("round-1 point is the identity or invalid")?;
        let second = scalar(&self.second_secret);
        let exponent = second * scalar(&self.password_scalar);
        let shared = &(&point - &(&peer_second * &exponent)) * &second;
        let shared = Secret::new(encode(&shared));
        Ok(mac(
            shared.expose(),
            &[b"jadeite/v1/jpake-key", self.role.as_str().as_bytes()],
        ))
    }
}

/// s = H(role, password) reduced mod q from 114 bytes (wide reduction, no bias
/// worth the name). Zero has probability ~2^-446 and maps to one.
fn password_scalar(role: &RoleName, password: &Password) -> Secret<SCALAR_LEN> {
    let s = wide_scalar(&[
        b"jadeite/v1/jpake-password",
        role.as_str().as_bytes(),
        password.expose(),
    ]);
    let s = if bool::from(s.ct_eq(&Scalar::zero())) {
        Scalar::one()
    } else {
        s
    };
    Secret::new(s.to_bytes())
}

fn wide_scalar(parts: &[&[u8]]) -> Scalar {
    let mut wide = Secret::<114>::new([0u8; 114]);
    let low = hash(&[&[0u8], &hash(parts)]);
    let high = hash(&[&[1u8], &hash(parts)]);
    wide.expose_mut()[..64].copy_from_slice(&low);
    wide.expose_mut()[64..].copy_from_slice(&high[..50]);
    Scalar::from_bytes_mod_order_wide(wide.expose())
}

fn random_scalar() -> Result<Secret<SCALAR_LEN>, getrandom::Error> {
    loop {
        let wide = Secret::<114>::random()?;
        let s = Scalar::from_bytes_mod_order_wide(wide.expose());
        if !bool::from(s.ct_eq(&Scalar::zero())) {
            return Ok(Secret::new(s.to_bytes()));
        }
    }
}

/// Our own scalars are stored reduced, so the raw load is exact.
fn scalar(secret: &Secret<SCALAR_LEN>) -> Scalar {
    Scalar::from_bytes(*secret.expose())
}

fn encode(point: &DecafPoint) -> [u8; POINT_LEN] {
    point.compress().0
}

/// Canonical decaf encodings only; the identity (all zeros) is refused.
fn decode_non_identity(bytes: &[u8; POINT_LEN]) -> Option<DecafPoint> {
    if bytes.iter().all(|b| *b == 0) {
        return None;
    }
    CompressedDecaf(*bytes).decompress()
}

fn sum(points: &[&[u8; POINT_LEN]]) -> Result<DecafPoint, JpakeFailure> {
    let mut total = DecafPoint::identity();
    for point in points {
        total = &total + &decode_non_identity(point).ok_or("point is the identity or invalid")?;
    }
    // RFC 8236 §2.2: the round-2 generator must not be the identity.
    if total.equals(&DecafPoint::identity()) {
        return Err("round-2 generator is the identity");
    }
    Ok(total)
}

fn challenge(
    generator: &DecafPoint,
    commitment: &[u8; POINT_LEN],
    public: &[u8; POINT_LEN],
    prover: Position,
    role: &RoleName,
    context: &[u8; HASH_LEN],
) -> Scalar {
    wide_scalar(&[
        b"jadeite/v1/jpake-zkp",
        &encode(generator),
        commitment,
        public,
        prover.label(),
        role.as_str().as_bytes(),
        context,
    ])
}

/// Schnorr proof of knowledge of `secret` with `public = generator * secret`.
fn prove(
    generator: &DecafPoint,
    secret: &Secret<SCALAR_LEN>,
    public: &[u8; POINT_LEN],
    prover: Position,
    role: &RoleName,
    context: &[u8; HASH_LEN],
) -> Result<Proof, getrandom::Error> {
    let nonce = random_scalar()?;
    let commitment = encode(&(generator * &scalar(&nonce)));
    let c = challenge(generator, &commitment, public, prover, role, context);
    let response = scalar(&nonce) - scalar(secret) * c;
    Ok(Proof {
        commitment,
        response: response.to_bytes(),
    })
}

/// V == G*r + X*c, with r canonical and V a valid point.
fn verify(
    generator: &DecafPoint,
    public_point: &DecafPoint,
    public: &[u8; POINT_LEN],
    proof: &Proof,
    prover: Position,
    role: &RoleName,
    context: &[u8; HASH_LEN],
) -> Result<(), JpakeFailure> {
    let mut response = [0u8; SCALAR_LEN + 1];
    response[..SCALAR_LEN].copy_from_slice(&proof.response);
    let response = Scalar::from_canonical_bytes(response).ok_or("proof response out of range")?;
    let commitment = CompressedDecaf(proof.commitment)
        .decompress()
        .ok_or("proof commitment invalid")?;
    let c = challenge(generator, &proof.commitment, public, prover, role, context);
    let expected = &(generator * &response) + &(public_point * &c);
    if expected.equals(&commitment) {
        Ok(())
    } else {
        Err("proof does not verify")
    }
}

impl Proof {
    fn write(&self, out: &mut Writer) {
        out.bytes(&self.commitment).bytes(&self.response);
    }

    fn read(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            commitment: input.array("zkp commitment")?,
            response: input.array("zkp response")?,
        })
    }
}

fn read_role(input: &mut Reader<'_>) -> Result<RoleName, DecodeError> {
    let field = "role name";
    RoleName::from_wire(input.vec8(1, crate::roles::MAX_ROLE_NAME_LEN, field)?)
        .ok_or(DecodeError::InvalidName { field })
}

pub(crate) fn write_role(out: &mut Writer, role: &RoleName) {
    out.vec8(role.as_str().as_bytes());
}

pub(crate) fn read_role_name(input: &mut Reader<'_>) -> Result<RoleName, DecodeError> {
    read_role(input)
}

impl Round1 {
    pub(crate) fn write(&self, out: &mut Writer) {
        write_role(out, &self.role);
        out.bytes(&self.first);
        self.first_proof.write(out);
        out.bytes(&self.second);
        self.second_proof.write(out);
    }

    pub(crate) fn read(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            role: read_role(input)?,
            first: input.array("jpake round-1 point")?,
            first_proof: Proof::read(input)?,
            second: input.array("jpake round-1 point")?,
            second_proof: Proof::read(input)?,
        })
    }
}

impl Round2 {
    pub(crate) fn write(&self, out: &mut Writer) {
        write_role(out, &self.role);
        out.bytes(&self.point);
        self.proof.write(out);
    }

    pub(crate) fn read(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            role: read_role(input)?,
            point: input.array("jpake round-2 point")?,
            proof: Proof::read(input)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str) -> RoleName {
        RoleName::new(name).expect("valid role")
    }

    fn run(a: &str, b: &str) -> (Secret<HASH_LEN>, Secret<HASH_LEN>) {
        let ctx = [7u8; HASH_LEN];
        let (mut alice, a1) = JpakeRun::start(
            role("r"),
            &Password::new(a).expect("pw"),
            Position::Initiator,
            &ctx,
        )
        .expect("rng");
        let (mut bob, b1) = JpakeRun::start(
            role("r"),
            &Password::new(b).expect("pw"),
            Position::Responder,
            &ctx,
        )
        .expect("rng");
        alice.receive_round1(&b1, &ctx).expect("valid");
        bob.receive_round1(&a1, &ctx).expect("valid");
        let a2 = alice.round2(&ctx).expect("round2");
        let b2 = bob.round2(&ctx).expect("round2");
        (
            alice.finish(&b2, &ctx).expect("valid"),
            bob.finish(&a2, &ctx).expect("valid"),
        )
    }

    #[test]
    fn same_password_same_key() {
        let (a, b) = run("hunter2", "hunter2");
        assert_eq!(a, b);
    }

    #[test]
    fn different_password_different_key() {
        let (a, b) = run("hunter2", "hunter3");
        assert_ne!(a, b);
    }

    #[test]
    fn proof_for_own_position_is_rejected() {
        let ctx = [1u8; HASH_LEN];
        let pw = Password::new("pw").expect("pw");
        let (mut alice, a1) =
            JpakeRun::start(role("r"), &pw, Position::Initiator, &ctx).expect("rng");
        // A proof made for the initiator's position, presented to the initiator.
        let (_, forged) = JpakeRun::start(role("r"), &pw, Position::Initiator, &ctx).expect("rng");
        assert!(alice.receive_round1(&forged, &ctx).is_err());
        // Its own round 1 reflected back: same position and echoed points.
        assert!(alice.receive_round1(&a1, &ctx).is_err());
    }

    fn started(position: Position) -> (JpakeRun, Round1) {
        JpakeRun::start(
            role("r"),
            &Password::new("pw").expect("pw"),
            position,
            &[3u8; HASH_LEN],
        )
        .expect("rng")
    }

    #[test]
    fn identity_point_is_rejected() {
        let (mut alice, _) = started(Position::Initiator);
        let (_, mut bob1) = started(Position::Responder);
        bob1.second = [0u8; POINT_LEN];
        assert_eq!(
            alice.receive_round1(&bob1, &[3u8; HASH_LEN]),
            Err("round-1 point is the identity or invalid")
        );
    }

    #[test]
    fn noncanonical_decaf_is_rejected() {
        let (mut alice, _) = started(Position::Initiator);
        let (_, mut bob1) = started(Position::Responder);
        // p = 2^448 - 2^224 - 1 encodes zero non-canonically; all-ones exceeds p.
        let mut p = [0xffu8; POINT_LEN];
        p[28] = 0xfe;
        for bad in [p, [0xffu8; POINT_LEN]] {
            bob1.first = bad;
            assert!(alice.receive_round1(&bob1, &[3u8; HASH_LEN]).is_err());
        }
        // Also as a proof commitment.
        let (_, mut bob1) = started(Position::Responder);
        bob1.first_proof.commitment = p;
        assert!(alice.receive_round1(&bob1, &[3u8; HASH_LEN]).is_err());
    }

    #[test]
    fn scalar_out_of_range_is_rejected() {
        let (mut alice, _) = started(Position::Initiator);
        let (_, mut bob1) = started(Position::Responder);
        // The group order q itself: the residue 0, but not a canonical encoding.
        // q - 1 ends in byte 0xf2, so adding one to the low byte does not carry.
        let mut order = (Scalar::zero() - Scalar::one()).to_bytes();
        order[0] += 1;
        bob1.first_proof.response = order;
        assert_eq!(
            alice.receive_round1(&bob1, &[3u8; HASH_LEN]),
            Err("proof response out of range")
        );
        bob1.first_proof.response = [0xff; SCALAR_LEN];
        assert_eq!(
            alice.receive_round1(&bob1, &[3u8; HASH_LEN]),
            Err("proof response out of range")
        );
    }

    #[test]
    fn round2_over_wrong_generator_is_rejected() {
        let ctx = [9u8; HASH_LEN];
        let pw = Password::new("pw").expect("pw");
        let (mut alice, a1) =
            JpakeRun::start(role("r"), &pw, Position::Initiator, &ctx).expect("rng");
        let (mut bob, b1) =
            JpakeRun::start(role("r"), &pw, Position::Responder, &ctx).expect("rng");
        alice.receive_round1(&b1, &ctx).expect("valid");
        bob.receive_round1(&a1, &ctx).expect("valid");
        // Bob computes round 2 over the base point G instead of X1 + X2 + X3.
        let generator = DecafPoint::generator();
        let exponent =
            Secret::new((scalar(&bob.second_secret) * scalar(&bob.password_scalar)).to_bytes());
        let point = encode(&(&generator * &scalar(&exponent)));
        let proof = prove(
            &generator,
            &exponent,
            &point,
            Position::Responder,
            &role("r"),
            &ctx,
        )
        .expect("rng");
        let forged = Round2 {
            role: role("r"),
            point,
            proof,
        };
        assert_eq!(
            alice.finish(&forged, &ctx).err(),
            Some("proof does not verify")
        );
    }

    #[test]
    fn identity_generator_is_rejected() {
        let g = DecafPoint::generator();
        let x = encode(&g);
        let minus_2x = encode(&-(&(&g + &g)));
        assert_eq!(
            sum(&[&x, &x, &minus_2x]).err(),
            Some("round-2 generator is the identity")
        );
    }

    #[test]
    fn debug_output_holds_no_secret() {
        let (run, _) = started(Position::Initiator);
        let text = format!("{run:?}");
        assert!(
            !text.contains("secret") && !text.contains("scalar"),
            "{text}"
        );
    }
}
