//! Gathering against scripted nodes (unit level: the fetch transport is a closure; the
//! bundles, fragments and replies are real). The fault cases of the black box issue:
//! two nodes down, three down, a liar among 4–5 answers, a liar among exactly 3, slow
//! nodes past the deadline, forged commitments.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs, reason = "tests")]

use std::time::Duration;

use cifer_blackbox::{GatherError, authenticate_commitments, gather, rebuild};
use cifer_core::{Commitments, Seed, keccak256};
use cifer_custody::{Bundle, Released, create_bundle, open_delivery};
use k256::ecdsa::SigningKey;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NODES: [u32; 5] = [11, 12, 13, 14, 15];

struct Fixture {
    bundle: Bundle,
    commitments: Commitments,
    answers: Vec<Released>,
    signer: [u8; 20],
    /// Shared by every run on this fixture: later runs take the memoized path for the
    /// honest fragments, and a lie is never in it.
    memo: cifer_core::fragment::VerificationMemo,
}

fn fixture(round: u64) -> Fixture {
    let node_seeds: Vec<Seed> =
        (0..5).map(|i| Seed::generate(&mut ChaCha20Rng::seed_from_u64(round * 10 + i))).collect();
    let eks: Vec<_> = node_seeds.iter().map(Seed::encapsulation_key).collect();
    let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
    let bundle = create_bundle(31337, 1, 3, &eks, &key).unwrap();
    let answers = (1..=5u8)
        .map(|slot| {
            let d = open_delivery(&bundle, &node_seeds[usize::from(slot) - 1], slot, 5).unwrap();
            Released {
                fragment: d.fragment,
                commitments: d.commitments,
                bundle_signature: bundle.signature,
            }
        })
        .collect();
    let commitments = Commitments::from_bytes(&bundle.commitments).unwrap();
    let signer = bundle.signer().unwrap();
    let memo = cifer_core::fragment::VerificationMemo::new(
        &mut ChaCha20Rng::seed_from_u64(round + 1_000),
        64,
    );
    Fixture { bundle, commitments, answers, signer, memo }
}

/// What a scripted node does.
#[derive(Clone, Copy)]
enum Script {
    Honest(u64),
    Down(u64),
    Lie(u64),
    Silent,
}

fn liar(answer: &Released) -> Released {
    let mut bytes = answer.fragment.to_bytes().to_vec();
    bytes[50] ^= 1;
    Released {
        fragment: cifer_core::Fragment::from_bytes(&bytes).unwrap(),
        commitments: answer.commitments.clone(),
        bundle_signature: answer.bundle_signature,
    }
}

async fn run(
    f: &Fixture,
    scripts: [Script; 5],
    deadline_ms: u64,
) -> Result<cifer_blackbox::Gathered, GatherError> {
    gather(&NODES, &f.commitments, Duration::from_millis(deadline_ms), |node| {
        let i = NODES.iter().position(|n| *n == node).unwrap();
        let answer = f.answers[i].clone_released();
        let script = scripts[i];
        async move {
            match script {
                Script::Honest(ms) => {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    Ok(answer)
                }
                Script::Down(ms) => {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    Err("connection refused".to_string())
                }
                Script::Lie(ms) => {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    Ok(liar(&answer))
                }
                Script::Silent => std::future::pending().await,
            }
        }
    })
    .await
}

trait CloneReleased {
    fn clone_released(&self) -> Released;
}
impl CloneReleased for Released {
    fn clone_released(&self) -> Released {
        Released {
            fragment: self.fragment.clone(),
            commitments: self.commitments.clone(),
            bundle_signature: self.bundle_signature,
        }
    }
}

fn ek_hash(f: &Fixture) -> [u8; 32] {
    keccak256(&f.bundle.encapsulation_key)
}

fn rebuilt_ek(f: &Fixture, g: &cifer_blackbox::Gathered) -> Vec<u8> {
    rebuild(&f.commitments, g, &ek_hash(f), |seed| Ok(seed.encapsulation_key().as_bytes().to_vec()))
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn all_honest_rebuilds_the_registered_key() {
    let f = fixture(1);
    authenticate_commitments(
        31337,
        1,
        &ek_hash(&f),
        &f.commitments,
        &f.bundle.signature,
        &f.signer,
    )
    .unwrap();
    let g = run(&f, [Script::Honest(5); 5], 1000).await.unwrap();
    assert_eq!(g.fragments.len(), 3);
    assert!(g.liars.is_empty());
    assert_eq!(rebuilt_ek(&f, &g), f.bundle.encapsulation_key);
}

#[tokio::test(start_paused = true)]
async fn two_nodes_down_still_succeeds() {
    let f = fixture(2);
    let s =
        [Script::Down(1), Script::Honest(5), Script::Silent, Script::Honest(7), Script::Honest(9)];
    let g = run(&f, s, 1000).await.unwrap();
    assert_eq!(rebuilt_ek(&f, &g), f.bundle.encapsulation_key);
    assert!(g.unavailable.iter().any(|(n, _)| *n == 11));
}

#[tokio::test(start_paused = true)]
async fn three_nodes_down_fails_by_the_deadline_naming_them() {
    let f = fixture(3);
    let s = [Script::Down(1), Script::Silent, Script::Silent, Script::Honest(5), Script::Honest(6)];
    let started = tokio::time::Instant::now();
    let err = run(&f, s, 250).await.unwrap_err();
    assert!(started.elapsed() <= Duration::from_millis(260));
    match err {
        GatherError::NotEnough { needed: 3, valid: 2, liars, mut unavailable } => {
            assert!(liars.is_empty());
            unavailable.sort_unstable();
            assert_eq!(unavailable, vec![11, 12, 13]);
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// The liar (node 11) answers first; two honest answers follow, then the others.
const LIAR_FIRST: [Script; 5] =
    [Script::Lie(1), Script::Honest(5), Script::Honest(6), Script::Honest(20), Script::Honest(30)];

/// Node 12 lies, nodes 14 and 15 are down: exactly three answers.
const LIAR_AMONG_EXACTLY_THREE: [Script; 5] =
    [Script::Honest(1), Script::Lie(2), Script::Honest(3), Script::Down(1), Script::Down(1)];

#[tokio::test(start_paused = true)]
async fn a_liar_among_five_is_outvoted_and_named() {
    let f = fixture(4);
    let g = run(&f, LIAR_FIRST, 1000).await.unwrap();
    assert_eq!(g.liars.iter().map(|(n, _)| *n).collect::<Vec<_>>(), vec![11]);
    assert_eq!(rebuilt_ek(&f, &g), f.bundle.encapsulation_key);
}

#[tokio::test(start_paused = true)]
async fn a_liar_among_exactly_three_is_an_integrity_error_never_a_wrong_key() {
    let f = fixture(5);
    let err = run(&f, LIAR_AMONG_EXACTLY_THREE, 1000).await.unwrap_err();
    assert_eq!(err.liars(), &[12]);
}

#[tokio::test(start_paused = true)]
async fn forged_commitments_are_untrusted_and_a_wrong_key_is_refused() {
    let f = fixture(6);
    let other = fixture(7);
    // Commitments of another sharing with this bundle's signature: not authentic.
    assert!(matches!(
        authenticate_commitments(
            31337,
            1,
            &ek_hash(&f),
            &other.commitments,
            &f.bundle.signature,
            &f.signer
        ),
        Err(GatherError::UntrustedCommitments)
    ));
    // A key hash other than the on-chain one: not authentic either.
    assert!(
        authenticate_commitments(
            31337,
            1,
            &[0u8; 32],
            &f.commitments,
            &f.bundle.signature,
            &f.signer
        )
        .is_err()
    );
    // Valid fragments of *another* secret's sharing rebuild a key that is refused.
    let g = run(&other, [Script::Honest(1); 5], 1000).await.unwrap();
    assert!(matches!(
        rebuild(&other.commitments, &g, &ek_hash(&f), |_| Ok(())),
        Err(GatherError::WrongKey)
    ));
}

#[tokio::test(start_paused = true)]
async fn answers_for_another_slot_or_other_commitments_are_lies() {
    let f = fixture(8);
    let other = fixture(9);
    let mut answers = f.answers.iter().map(CloneReleased::clone_released).collect::<Vec<_>>();
    answers.swap(0, 1); // nodes 11 and 12 answer each other's (valid) fragments
    answers[2] = other.answers[2].clone_released(); // node 13 answers another sharing
    let fx = Fixture {
        bundle: f.bundle.clone(),
        commitments: f.commitments.clone(),
        answers,
        signer: f.signer,
        memo: f.memo,
    };
    let err = run(
        &fx,
        [Script::Honest(1), Script::Honest(2), Script::Honest(3), Script::Down(1), Script::Silent],
        500,
    )
    .await
    .unwrap_err();
    let mut liars = err.liars().to_vec();
    liars.sort_unstable();
    assert_eq!(liars, vec![11, 12, 13]);
}

// ---------------------------------------------------------------------------------------
// The fast path the service uses: rebuild first, verify only when the key is wrong.

/// A lie that matters: a flipped bit in the first limb's *share* (bytes 2..34), which the
/// rebuild cannot survive.
fn share_liar(answer: &Released) -> Released {
    let mut bytes = answer.fragment.to_bytes().to_vec();
    bytes[20] ^= 1;
    Released {
        fragment: cifer_core::Fragment::from_bytes(&bytes).unwrap(),
        commitments: answer.commitments.clone(),
        bundle_signature: answer.bundle_signature,
    }
}

async fn run_fast(
    f: &Fixture,
    scripts: [Script; 5],
    deadline_ms: u64,
) -> Result<cifer_blackbox::Rebuilt<Vec<u8>>, GatherError> {
    let signer = f.signer;
    cifer_blackbox::gather_and_rebuild(
        &NODES,
        3,
        Duration::from_millis(deadline_ms),
        |node| {
            let i = NODES.iter().position(|n| *n == node).unwrap();
            let answer = f.answers[i].clone_released();
            let script = scripts[i];
            async move {
                match script {
                    Script::Honest(ms) => {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        Ok(answer)
                    }
                    Script::Down(ms) => {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        Err("connection refused".to_string())
                    }
                    Script::Lie(ms) => {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        Ok(share_liar(&answer))
                    }
                    Script::Silent => std::future::pending().await,
                }
            }
        },
        |r: &Released| {
            authenticate_commitments(
                31337,
                1,
                &ek_hash(f),
                &r.commitments,
                &r.bundle_signature,
                &signer,
            )
            .is_ok()
        },
        &ek_hash(f),
        &f.memo,
        |seed, key| {
            let ek = seed.encapsulation_key();
            assert_eq!(keccak256(ek.as_bytes()), key.encapsulation_key_keccak256());
            Ok(ek.as_bytes().to_vec())
        },
    )
    .await
}

fn named(v: &[(u32, cifer_blackbox::NodeFailure)]) -> Vec<u32> {
    let mut ids: Vec<u32> = v.iter().map(|(n, _)| *n).collect();
    ids.sort_unstable();
    ids
}

#[tokio::test(start_paused = true)]
async fn fast_path_all_honest_and_two_down() {
    let f = fixture(21);
    let r = run_fast(&f, [Script::Honest(5); 5], 1000).await.unwrap();
    assert_eq!(r.value, f.bundle.encapsulation_key);
    assert!(r.liars.is_empty());
    let s =
        [Script::Down(1), Script::Honest(5), Script::Silent, Script::Honest(7), Script::Honest(9)];
    let r = run_fast(&f, s, 1000).await.unwrap();
    assert_eq!(r.value, f.bundle.encapsulation_key);
    assert_eq!(named(&r.unavailable), [11]);
}

#[tokio::test(start_paused = true)]
async fn fast_path_liar_among_the_first_three_is_named_and_outvoted() {
    let f = fixture(22);
    let r = run_fast(&f, LIAR_FIRST, 1000).await.unwrap();
    assert_eq!(r.value, f.bundle.encapsulation_key, "never a wrong key");
    assert_eq!(named(&r.liars), [11]);
}

#[tokio::test(start_paused = true)]
async fn a_node_that_turns_liar_after_honest_answers_is_still_caught() {
    // Node 11's honest fragment is in the memo after the first run; its lie is not.
    let f = fixture(26);
    let r = run_fast(&f, [Script::Honest(1); 5], 1000).await.unwrap();
    assert!(r.liars.is_empty());
    assert!(!f.memo.is_empty());
    let r = run_fast(&f, LIAR_FIRST, 1000).await.unwrap();
    assert_eq!(r.value, f.bundle.encapsulation_key, "never a wrong key");
    assert_eq!(named(&r.liars), [11]);
    match run_fast(&f, LIAR_AMONG_EXACTLY_THREE, 1000).await {
        Err(GatherError::NotEnough { liars, valid, .. }) => {
            assert_eq!(liars, [12]);
            assert_eq!(valid, 2);
        }
        other => panic!("expected NotEnough, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn fast_path_liar_with_exactly_three_answers_is_an_error_naming_it() {
    let f = fixture(23);
    match run_fast(&f, LIAR_AMONG_EXACTLY_THREE, 1000).await {
        Err(GatherError::NotEnough { liars, unavailable, valid, .. }) => {
            assert_eq!(liars, [12]);
            assert_eq!(valid, 2);
            let mut u = unavailable;
            u.sort_unstable();
            assert_eq!(u, [14, 15]);
        }
        other => panic!("expected NotEnough, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn fast_path_forged_commitments_are_lies_and_three_down_times_out() {
    let f = fixture(24);
    let other = fixture(25);
    // Node 11 answers first with another bundle's (authentic-looking) commitments.
    let mut forged = f.answers.iter().map(CloneReleased::clone_released).collect::<Vec<_>>();
    forged[0] = other.answers[0].clone_released();
    let g = Fixture {
        bundle: f.bundle.clone(),
        commitments: f.commitments.clone(),
        answers: forged,
        signer: f.signer,
        memo: cifer_core::fragment::VerificationMemo::new(&mut ChaCha20Rng::seed_from_u64(1), 64),
    };
    let r = run_fast(
        &g,
        [
            Script::Honest(1),
            Script::Honest(5),
            Script::Honest(6),
            Script::Honest(7),
            Script::Silent,
        ],
        1000,
    )
    .await
    .unwrap();
    assert_eq!(r.value, f.bundle.encapsulation_key);
    assert_eq!(named(&r.liars), [11]);
    let s = [Script::Silent, Script::Silent, Script::Silent, Script::Honest(1), Script::Honest(2)];
    match run_fast(&f, s, 500).await {
        Err(GatherError::NotEnough { unavailable, .. }) => assert_eq!(unavailable.len(), 3),
        other => panic!("expected NotEnough, got {other:?}"),
    }
}
