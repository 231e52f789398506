//! Asking shard nodes for fragments: one queue per node, drained into batches.
//!
//! Every decryption hands its release item (the user's signed request and this request's
//! fresh response key) to the queue of each of the cluster's nodes at once. Each node has
//! one worker task with at most one batch in flight: when the node answers, everything that
//! queued up meanwhile (up to [`MAX_BATCH`]) goes in the next `POST /v1/releases`, under
//! one signature by the black box's registered signer over
//! [`cifer_custody::release_batch_digest`] of the items' bindings. At low load a batch is
//! one item and leaves at once; under load the batches grow by themselves, and one HTTP
//! exchange, one signature and one recovery at the node serve many decryptions.
//!
//! An item whose decryption stopped waiting (it had its three fragments, or its deadline
//! passed) is dropped from a queue before it is sent: the node is not asked for work
//! nobody will read. Items already sent are answered in full, so connections stay pooled.
//!
//! **Invariant:** each item's response key is bound to its own request: the batch
//! digest covers every item's [`cifer_custody::release_key_digest`], which each node
//! recomputes from the items it received, so no item can be added, dropped, reordered or
//! given another key without a new signature by the registered signer.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use axum::body::Bytes;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use crate::api::AppState;

/// Most items in one batch (the node's own limit, `shard-node` `MAX_BATCH`).
pub const MAX_BATCH: usize = 32;

/// One decryption's request to the cluster, shared by the queues of its nodes.
pub struct Item {
    /// `{"request":…,"signature":…,"responseKey":…}`, serialized once for every node.
    json: Bytes,
    /// Its [`cifer_custody::release_key_digest`].
    bound: [u8; 32],
    /// The signature over the batch digest of this item alone, made once when the first
    /// node's batch is just this item (at low load, all five are).
    solo: OnceLock<[u8; 65]>,
}

impl Item {
    /// An item of `json` whose binding is `bound`.
    #[must_use]
    pub fn new(json: Bytes, bound: [u8; 32]) -> Self {
        Self { json, bound, solo: OnceLock::new() }
    }
}

impl core::fmt::Debug for Item {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Item").field("bound", &hex::encode(self.bound)).finish_non_exhaustive()
    }
}

/// What one node's release answer means for the gathering.
#[derive(Debug, PartialEq, Eq)]
pub enum ReleaseAnswer {
    /// The node's view trails the request's block: nothing claimed, ask again.
    Future,
    /// The sealed fragment (still to be opened and verified).
    Sealed(Vec<u8>),
}

struct Queued {
    item: Arc<Item>,
    reply: oneshot::Sender<Result<ReleaseAnswer, String>>,
}

/// The per-node queues.
#[derive(Default)]
pub struct Releases {
    queues: Mutex<HashMap<String, mpsc::UnboundedSender<Queued>>>,
}

impl core::fmt::Debug for Releases {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Releases").finish_non_exhaustive()
    }
}

impl Releases {
    /// Asks the node at `endpoint` to release its fragment for `item`: queues it, and
    /// waits for the answer of the batch it goes out in. Dropping the future withdraws
    /// the item if it has not been sent yet.
    ///
    /// # Errors
    /// A reason for transport failures and refusals (`refused: <code>`).
    pub async fn ask(
        &self,
        state: &Arc<AppState>,
        endpoint: &str,
        item: &Arc<Item>,
    ) -> Result<ReleaseAnswer, String> {
        let (reply, answer) = oneshot::channel();
        let queued = Queued { item: Arc::clone(item), reply };
        {
            let mut queues = self.queues.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let unsent = match queues.get(endpoint) {
                Some(queue) => queue.send(queued).err().map(|e| e.0),
                None => Some(queued),
            };
            // No worker yet, or it ended (the state is going away): start one.
            if let Some(queued) = unsent {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(worker(Arc::downgrade(state), endpoint.to_owned(), rx));
                let _ = tx.send(queued);
                if queues.len() >= 1024 {
                    // Endpoints come from the registry (a handful per cluster).
                    queues.clear();
                }
                queues.insert(endpoint.to_owned(), tx);
            }
        }
        answer.await.map_err(|_| "release queue closed".to_owned())?
    }
}

/// One node's worker: a batch at a time, each one what queued up while the last was out.
async fn worker(
    state: Weak<AppState>,
    endpoint: String,
    mut queue: mpsc::UnboundedReceiver<Queued>,
) {
    let mut batch: Vec<Queued> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            let Ok(next) = queue.try_recv() else { break };
            batch.push(next);
        }
        let Some(state) = state.upgrade() else { return };
        // Nobody waits for these any more: do not ask the node for them.
        let queued = batch.len();
        batch.retain(|q| !q.reply.is_closed());
        state.metrics.release_batch(batch.len(), queued - batch.len());
        if batch.is_empty() {
            continue;
        }
        let answers = exchange(&state, &endpoint, &batch).await;
        drop(state);
        match answers {
            Ok(answers) => {
                for (q, answer) in batch.drain(..).zip(answers) {
                    let _ = q.reply.send(answer);
                }
            }
            Err(reason) => {
                for q in batch.drain(..) {
                    let _ = q.reply.send(Err(reason.clone()));
                }
            }
        }
    }
}

/// Signs, sends and reads one batch: an answer per item, in order, or one reason for all.
async fn exchange(
    state: &AppState,
    endpoint: &str,
    batch: &[Queued],
) -> Result<Vec<Result<ReleaseAnswer, String>>, String> {
    let signature = match batch {
        [only] => match only.item.solo.get() {
            Some(s) => *s,
            None => {
                let s = sign(state, &[only.item.bound])?;
                *only.item.solo.get_or_init(|| s)
            }
        },
        _ => sign(state, &batch.iter().map(|q| q.item.bound).collect::<Vec<_>>())?,
    };
    let body = batch_body(&wire_hex(state.account.as_slice()), &signature, batch);
    let (status, bytes) = state.nodes.post_bytes(endpoint, "/v1/releases", body).await?;
    if status != 200 {
        // The node refused the batch as a whole: the same reason for every item.
        return match release_answer(status, &bytes)? {
            ReleaseAnswer::Future => Ok(batch.iter().map(|_| Ok(ReleaseAnswer::Future)).collect()),
            ReleaseAnswer::Sealed(_) => Err("refused: ?".into()),
        };
    }
    let answers = batch_answers(&bytes)?;
    if answers.len() != batch.len() {
        return Err(format!("answer: {} results for {} requests", answers.len(), batch.len()));
    }
    Ok(answers)
}

fn sign(state: &AppState, bounds: &[[u8; 32]]) -> Result<[u8; 65], String> {
    cifer_custody::sign_digest(&state.signer, &cifer_custody::release_batch_digest(bounds))
        .map_err(|_| "the black box cannot sign".to_owned())
}

fn wire_hex(bytes: &[u8]) -> String {
    cifer_service::wire::hex0x(bytes)
}

/// `{"blackBox":{"account":…,"signature":…},"items":[…]}`, the items' JSON as serialized.
fn batch_body(account: &str, signature: &[u8; 65], batch: &[Queued]) -> Bytes {
    let items: usize = batch.iter().map(|q| q.item.json.len() + 1).sum();
    let mut body = Vec::with_capacity(96 + account.len() + 2 * 65 + items);
    body.extend_from_slice(b"{\"blackBox\":{\"account\":\"");
    body.extend_from_slice(account.as_bytes());
    body.extend_from_slice(b"\",\"signature\":\"");
    body.extend_from_slice(wire_hex(signature).as_bytes());
    body.extend_from_slice(b"\"},\"items\":[");
    for (i, q) in batch.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&q.item.json);
    }
    body.extend_from_slice(b"]}");
    body.into()
}

/// A node's answer to a release, read without a JSON tree: `{"fragment":"0x…"}` or
/// `{"error":{"code":…}}`, and in a batch each with its `status`. Other fields are
/// ignored (a newer node may add some).
#[derive(Deserialize)]
struct ReleaseReply<'a> {
    #[serde(default)]
    status: Option<u16>,
    #[serde(borrow, default)]
    fragment: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    error: Option<ReleaseRefusal<'a>>,
}

#[derive(Deserialize)]
struct ReleaseRefusal<'a> {
    #[serde(borrow, default)]
    code: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct BatchReply<'a> {
    #[serde(borrow)]
    results: Vec<ReleaseReply<'a>>,
}

/// Reads a node's answer to one release. A refusal's reason names the node's error code
/// if it looks like one (lower-case letters and `_`, at most 32), else `?`: the code ends
/// up in logs and in the answer to the user, and a lying node chooses its bytes.
///
/// # Errors
/// The reason the answer is not a fragment.
pub fn release_answer(status: u16, bytes: &[u8]) -> Result<ReleaseAnswer, String> {
    meaning(status, parse::<ReleaseReply<'_>>(bytes)?)
}

/// Reads a node's answer to a batch: one meaning per result, in order.
///
/// # Errors
/// If the answer is not the batch's JSON.
pub fn batch_answers(bytes: &[u8]) -> Result<Vec<Result<ReleaseAnswer, String>>, String> {
    let reply: BatchReply<'_> = parse(bytes)?;
    Ok(reply
        .results
        .into_iter()
        .map(|r| match r.status {
            Some(status) => meaning(status, r),
            None => Err("answer: a result without a status".to_owned()),
        })
        .collect())
}

fn parse<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    // serde's message may quote the value it rejected: name only the place.
    serde_json::from_slice(bytes).map_err(|e| {
        format!("answer: not the expected JSON (line {}, column {})", e.line(), e.column())
    })
}

fn meaning(status: u16, reply: ReleaseReply<'_>) -> Result<ReleaseAnswer, String> {
    if status != 200 {
        let code = reply
            .error
            .and_then(|e| e.code)
            .filter(|c| c.len() <= 32 && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        return match code.as_deref() {
            Some("future") if status == 422 => Ok(ReleaseAnswer::Future),
            code => Err(format!("refused: {}", code.unwrap_or("?"))),
        };
    }
    reply
        .fragment
        .and_then(|s| hex::decode(s.strip_prefix("0x").unwrap_or(&s)).ok())
        .map(ReleaseAnswer::Sealed)
        .ok_or_else(|| "no fragment in the reply".to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn release_answers_are_read_into_their_meaning() {
        let ok = release_answer(200, br#"{"fragment":"0x00ff10"}"#).unwrap();
        assert_eq!(ok, ReleaseAnswer::Sealed(vec![0x00, 0xff, 0x10]));
        let extra = br#"{"fragment":"0xab","servedBy":3}"#;
        assert_eq!(release_answer(200, extra).unwrap(), ReleaseAnswer::Sealed(vec![0xab]));
        let future = br#"{"error":{"code":"future","message":"ahead of the head"}}"#;
        assert_eq!(release_answer(422, future).unwrap(), ReleaseAnswer::Future);
        // `future` only means "ask again" with its status.
        assert_eq!(release_answer(500, future).unwrap_err(), "refused: future");
        let refused = br#"{"error":{"code":"not_authorized","message":"no"}}"#;
        assert_eq!(release_answer(403, refused).unwrap_err(), "refused: not_authorized");
        let odd = br#"{"error":{"code":"<script>\nx"}}"#;
        assert_eq!(release_answer(403, odd).unwrap_err(), "refused: ?");
        assert_eq!(release_answer(403, b"{}").unwrap_err(), "refused: ?");
        for bad in [&br#"{"fragment":"0xzz"}"#[..], br#"{"fragment":7}"#, b"{}"] {
            assert!(release_answer(200, bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(release_answer(200, b"not json").unwrap_err().starts_with("answer: "));
        let quoted = release_answer(403, br#"{"error":"<b>lie</b>"}"#).unwrap_err();
        assert!(quoted.starts_with("answer: ") && !quoted.contains("lie"), "{quoted}");
    }

    #[test]
    fn batch_answers_are_read_one_per_result_in_order() {
        let body = br#"{"results":[
            {"status":200,"fragment":"0x0102"},
            {"status":422,"error":{"code":"future","message":"m"}},
            {"status":409,"error":{"code":"replayed","message":"m"}},
            {"status":200},
            {"fragment":"0x01"}
        ]}"#;
        let answers = batch_answers(body).unwrap();
        assert_eq!(answers.len(), 5);
        assert_eq!(answers[0], Ok(ReleaseAnswer::Sealed(vec![1, 2])));
        assert_eq!(answers[1], Ok(ReleaseAnswer::Future));
        assert_eq!(answers[2], Err("refused: replayed".to_owned()));
        assert_eq!(answers[3], Err("no fragment in the reply".to_owned()));
        assert_eq!(answers[4], Err("answer: a result without a status".to_owned()));
        assert!(batch_answers(br#"{"fragment":"0x01"}"#).unwrap_err().starts_with("answer: "));
        assert!(batch_answers(b"[]").unwrap_err().starts_with("answer: "));
    }

    #[test]
    fn a_batch_body_carries_the_items_as_serialized() {
        let queued = |json: &'static [u8]| Queued {
            item: Arc::new(Item::new(Bytes::from_static(json), [0; 32])),
            reply: oneshot::channel().0,
        };
        let batch = [queued(br#"{"a":1}"#), queued(br#"{"b":[2]}"#)];
        let body = batch_body("0xabcd", &[0x11; 65], &batch);
        let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({
                "blackBox": { "account": "0xabcd", "signature": format!("0x{}", "11".repeat(65)) },
                "items": [ { "a": 1 }, { "b": [2] } ],
            })
        );
    }
}
