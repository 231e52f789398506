//! Fan-out to the cluster, first-`t`-valid acceptance with blame, and checked rebuild.

use std::future::Future;
use std::time::Duration;

use cifer_core::fragment::VerificationMemo;
use cifer_core::{Commitments, DecapsulationKey, Fragment, Seed, fragment, keccak256};
use cifer_custody::Released;
use futures_util::stream::{FuturesUnordered, StreamExt};

/// A shard node's id in ClusterRegistry.
pub type NodeId = u32;

/// Why one node's answer was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeFailure {
    /// The node did not answer usefully (network error, refusal, timeout): not blamed
    /// for lying, only counted as missing.
    Unavailable(String),
    /// The node answered with a fragment that does not verify against the bundle's
    /// commitments, for another slot, or with commitments other than the bundle's: it lied.
    Invalid(String),
}

/// Errors of gathering and rebuilding.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatherError {
    /// Fewer than `t` valid fragments by the deadline or once every node had answered.
    #[error(
        "only {valid} of {needed} fragments could be gathered (liars: {liars:?}, unavailable: {unavailable:?})"
    )]
    NotEnough {
        /// The threshold.
        needed: usize,
        /// Valid fragments gathered.
        valid: usize,
        /// Nodes whose answers were invalid.
        liars: Vec<NodeId>,
        /// Nodes that failed or did not answer in time.
        unavailable: Vec<NodeId>,
    },
    /// The commitments are not signed by a registered black box over this secret's key.
    #[error("bundle commitments are not authentic")]
    UntrustedCommitments,
    /// The fragments verified but the rebuilt key is not the one registered on chain.
    #[error("rebuilt key does not match the on-chain public key hash")]
    WrongKey,
    /// A protocol-level failure.
    #[error(transparent)]
    Core(#[from] cifer_core::Error),
}

impl GatherError {
    /// The nodes this error blames for lying.
    #[must_use]
    pub fn liars(&self) -> &[NodeId] {
        match self {
            GatherError::NotEnough { liars, .. } => liars,
            GatherError::UntrustedCommitments | GatherError::WrongKey | GatherError::Core(_) => &[],
        }
    }
}

/// The outcome of a successful gather.
#[derive(Debug)]
pub struct Gathered {
    /// Exactly `t` valid fragments, in arrival order.
    pub fragments: Vec<Fragment>,
    /// The commitments they verified against.
    pub commitments: Commitments,
    /// Nodes that answered with something invalid (reported even on success).
    pub liars: Vec<(NodeId, NodeFailure)>,
    /// Nodes that failed or had not answered when `t` valid fragments were in.
    pub unavailable: Vec<(NodeId, NodeFailure)>,
}

/// Asks every node (in `nodes`, `slot` = position + 1) at once through `fetch`, and
/// returns as soon as `commitments.threshold()` fragments verified. A node's answer is
/// invalid if its commitments differ from `commitments` (the bundle's, authenticated by
/// the caller), if its fragment is for another slot, or if the fragment does not verify.
/// Outstanding requests are dropped (cancelled) on return.
///
/// # Errors
/// [`GatherError::NotEnough`] naming liars and unavailable nodes, when the threshold
/// cannot be reached or the deadline passes.
pub async fn gather<F, Fut>(
    nodes: &[NodeId],
    commitments: &Commitments,
    deadline: Duration,
    fetch: F,
) -> Result<Gathered, GatherError>
where
    F: Fn(NodeId) -> Fut,
    Fut: Future<Output = Result<Released, String>>,
{
    let expected = commitments.to_bytes();
    gather_authenticated(nodes, commitments.threshold(), deadline, fetch, |r| {
        r.commitments.as_bytes() == expected
    })
    .await
}

/// [`gather`] when the commitments are not known in advance: each answer carries the
/// commitments its node holds and the creating black box's signature over them, and the
/// first answer for which `authenticate` holds (see [`authenticate_commitments`]) fixes
/// the reference. An answer that does not authenticate, or whose commitments differ from
/// the reference, is a lie; so is a fragment for another slot or one that does not verify.
///
/// # Errors
/// As [`gather`].
pub async fn gather_authenticated<F, Fut, A>(
    nodes: &[NodeId],
    threshold: u8,
    deadline: Duration,
    fetch: F,
    authenticate: A,
) -> Result<Gathered, GatherError>
where
    F: Fn(NodeId) -> Fut,
    Fut: Future<Output = Result<Released, String>>,
    A: Fn(&Released) -> bool,
{
    let needed = usize::from(threshold);
    let mut pending: FuturesUnordered<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, &node)| {
            let fut = fetch(node);
            async move { (i, node, fut.await) }
        })
        .collect();
    let mut answered = vec![false; nodes.len()];
    let mut reference: Option<(Commitments, Vec<u8>)> = None;
    let mut fragments = Vec::with_capacity(needed);
    let mut liars = Vec::new();
    let mut unavailable = Vec::new();
    let timer = tokio::time::sleep(deadline);
    tokio::pin!(timer);
    while fragments.len() < needed {
        let next = tokio::select! {
            next = pending.next() => next,
            () = &mut timer => None,
        };
        let Some((i, node, answer)) = next else { break };
        answered[i] = true;
        let slot = u8::try_from(i + 1).unwrap_or(u8::MAX);
        let released = match answer {
            Err(reason) => {
                unavailable.push((node, NodeFailure::Unavailable(reason)));
                continue;
            }
            Ok(released) => released,
        };
        let verdict = match &reference {
            Some((commitments, bytes)) => check(&released, bytes, commitments, slot),
            None if authenticate(&released) => {
                let bytes = released.commitments.to_bytes();
                let verdict = check(&released, &bytes, &released.commitments, slot);
                if verdict.is_ok() {
                    reference = Some((released.commitments.clone(), bytes));
                }
                verdict
            }
            None => Err("commitments are not signed by a trusted black box".into()),
        };
        match verdict {
            Ok(()) => fragments.push(released.fragment),
            Err(why) => liars.push((node, NodeFailure::Invalid(why))),
        }
    }
    for (i, &node) in nodes.iter().enumerate() {
        if !answered[i] {
            unavailable.push((node, NodeFailure::Unavailable("no answer in time".into())));
        }
    }
    match reference {
        Some((commitments, _)) if fragments.len() >= needed => {
            Ok(Gathered { fragments, commitments, liars, unavailable })
        }
        _ => Err(GatherError::NotEnough {
            needed,
            valid: fragments.len(),
            liars: liars.iter().map(|(n, _)| *n).collect(),
            unavailable: unavailable.iter().map(|(n, _)| *n).collect(),
        }),
    }
}

/// What [`gather_and_rebuild`] returns: the caller's value derived from the seed, and the
/// nodes to report.
#[derive(Debug)]
pub struct Rebuilt<T> {
    /// What `use_seed` derived.
    pub value: T,
    /// Nodes whose answers were invalid.
    pub liars: Vec<(NodeId, NodeFailure)>,
    /// Nodes that failed before the seed was rebuilt (those still on their way then were
    /// not needed and are not listed).
    pub unavailable: Vec<(NodeId, NodeFailure)>,
}

/// The black box's fast path: like [`gather_authenticated`] followed by [`rebuild`], but
/// the first `threshold` answers that carry the authenticated commitments and their own
/// slot are verified together ([`Commitments::verify_all`]: one multi-scalar
/// multiplication instead of one per fragment). Only if that fails are they verified one
/// by one: the ones that do not verify are named as liars, and gathering goes on for
/// honest answers. The seed rebuilt from verified fragments must still hash (through its
/// encapsulation key) to `on_chain_ek_hash`, else [`GatherError::WrongKey`]. `use_seed`
/// runs once, on the accepted seed and its decapsulation key (derived once), both wiped
/// afterwards. Fragments that verified before against the same commitments are known
/// from `memo` and not verified again ([`fragment::combine_memoized`]).
///
/// # Errors
/// As [`gather`]; [`GatherError::WrongKey`]; [`GatherError::Core`] from `use_seed`.
#[allow(clippy::too_many_arguments, reason = "one call site; a struct would only rename them")]
pub async fn gather_and_rebuild<F, Fut, A, T>(
    nodes: &[NodeId],
    threshold: u8,
    deadline: Duration,
    fetch: F,
    authenticate: A,
    on_chain_ek_hash: &[u8; 32],
    memo: &VerificationMemo,
    use_seed: impl FnOnce(&Seed, &DecapsulationKey) -> cifer_core::Result<T>,
) -> Result<Rebuilt<T>, GatherError>
where
    F: Fn(NodeId) -> Fut,
    Fut: Future<Output = Result<Released, String>>,
    A: Fn(&Released) -> bool,
{
    let needed = usize::from(threshold);
    let mut pending: FuturesUnordered<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, &node)| {
            let fut = fetch(node);
            async move { (i, node, fut.await) }
        })
        .collect();
    let mut answered = vec![false; nodes.len()];
    let mut reference: Option<(Commitments, Vec<u8>)> = None;
    let mut candidates: Vec<(NodeId, Fragment)> = Vec::with_capacity(needed);
    let mut liars = Vec::new();
    let mut unavailable = Vec::new();
    let mut use_seed = Some(use_seed);
    let timer = tokio::time::sleep(deadline);
    tokio::pin!(timer);
    loop {
        let next = tokio::select! {
            next = pending.next() => next,
            () = &mut timer => None,
        };
        let Some((i, node, answer)) = next else { break };
        answered[i] = true;
        let slot = u8::try_from(i + 1).unwrap_or(u8::MAX);
        let released = match answer {
            Err(reason) => {
                unavailable.push((node, NodeFailure::Unavailable(reason)));
                continue;
            }
            Ok(released) => released,
        };
        // Cheap checks only: the commitments are the authenticated ones, the slot is its own.
        let cheap = match &reference {
            Some((_, bytes)) if released.commitments.as_bytes() != &bytes[..] => {
                Err("commitments differ from the bundle's".to_owned())
            }
            Some(_) => Ok(()),
            None if authenticate(&released) => {
                reference = Some((released.commitments.clone(), released.commitments.to_bytes()));
                Ok(())
            }
            None => Err("commitments are not signed by a trusted black box".to_owned()),
        };
        let cheap = cheap.and_then(|()| {
            if released.fragment.index() == slot {
                Ok(())
            } else {
                Err(format!("fragment for slot {} instead of {slot}", released.fragment.index()))
            }
        });
        if let Err(why) = cheap {
            liars.push((node, NodeFailure::Invalid(why)));
            continue;
        }
        candidates.push((node, released.fragment));
        if candidates.len() < needed {
            continue;
        }
        let Some((commitments, _)) = &reference else { continue };
        let fragments: Vec<Fragment> = candidates.iter().map(|(_, f)| f.clone()).collect();
        // `combine` checks all `t` at once (one multi-scalar multiplication); only if that
        // fails are they checked one by one, to name the liars and keep the honest ones.
        let Ok(seed) = fragment::combine_memoized(commitments, &fragments, memo) else {
            candidates.retain(|(node, f)| match commitments.verify(f) {
                Ok(()) => true,
                Err(e) => {
                    liars.push((*node, NodeFailure::Invalid(e.to_string())));
                    false
                }
            });
            continue;
        };
        let key = seed.decapsulation_key();
        if &key.encapsulation_key_keccak256() != on_chain_ek_hash {
            return Err(GatherError::WrongKey);
        }
        let f = use_seed.take().ok_or(GatherError::WrongKey)?;
        let value = f(&seed, &key)?;
        drop(key);
        drop(seed);
        // Nodes still on their way were not needed: not reported.
        return Ok(Rebuilt { value, liars, unavailable });
    }
    for (i, &node) in nodes.iter().enumerate() {
        if !answered[i] {
            unavailable.push((node, NodeFailure::Unavailable("no answer in time".into())));
        }
    }
    Err(GatherError::NotEnough {
        needed,
        valid: candidates.len(),
        liars: liars.iter().map(|(n, _)| *n).collect(),
        unavailable: unavailable.iter().map(|(n, _)| *n).collect(),
    })
}

fn check(
    released: &Released,
    expected: &[u8],
    commitments: &Commitments,
    slot: u8,
) -> Result<(), String> {
    if released.commitments.as_bytes() != expected {
        return Err("commitments differ from the bundle's".into());
    }
    if released.fragment.index() != slot {
        return Err(format!("fragment for slot {} instead of {slot}", released.fragment.index()));
    }
    commitments.verify(&released.fragment).map_err(|e| e.to_string())
}

/// Checks that `bundle_signature` over `(chain, cluster, ek hash, commitments)` recovers
/// to `registered_signer`: only then are the commitments the ones the creating black box
/// made for the key registered on chain.
///
/// # Errors
/// [`GatherError::UntrustedCommitments`].
pub fn authenticate_commitments(
    chain_id: u64,
    cluster_id: u32,
    on_chain_ek_hash: &[u8; 32],
    commitments: &Commitments,
    bundle_signature: &[u8; 65],
    registered_signer: &[u8; 20],
) -> Result<(), GatherError> {
    let bundle = cifer_custody::bundle_digest(
        chain_id,
        cluster_id,
        on_chain_ek_hash,
        &keccak256(&commitments.to_bytes()),
    );
    let signer = cifer_auth::ecdsa::Signature::from_bytes(bundle_signature)
        .and_then(|s| s.recover_address(&bundle))
        .map_err(|_| GatherError::UntrustedCommitments)?;
    if &signer == registered_signer { Ok(()) } else { Err(GatherError::UntrustedCommitments) }
}

/// Rebuilds the seed from gathered fragments, refuses it unless `keccak256(ek(seed))` is
/// the on-chain public key hash, and lends it to `use_seed` (which derives what it needs,
/// e.g. a stream key). The seed is wiped when this returns.
///
/// # Errors
/// [`GatherError::WrongKey`] if the key does not match; [`GatherError::Core`] if the
/// fragments do not combine.
pub fn rebuild<T>(
    commitments: &Commitments,
    gathered: &Gathered,
    on_chain_ek_hash: &[u8; 32],
    use_seed: impl FnOnce(&Seed) -> cifer_core::Result<T>,
) -> Result<T, GatherError> {
    let seed = fragment::combine(commitments, &gathered.fragments)?;
    if &seed.encapsulation_key().keccak256() != on_chain_ek_hash {
        return Err(GatherError::WrongKey);
    }
    Ok(use_seed(&seed)?)
}
