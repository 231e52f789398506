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
use std::future::Future;
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
        self.ask_via(|| Arc::downgrade(state), endpoint, item).await
    }

    /// [`Releases::ask`] through `transport`, which starts the node's worker if it has
    /// none yet.
    async fn ask_via<T: Transport>(
        &self,
        transport: impl FnOnce() -> T,
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
                tokio::spawn(worker(transport(), endpoint.to_owned(), rx));
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

/// What a node's worker needs from the service: the black box's signer, its HTTP client
/// and its counters. The service's is a weak reference to its state, so that workers end
/// with it; tests use a fake node.
trait Transport: Send + Sync + 'static {
    /// The registered account, `0x…`; `None` once the service is gone.
    fn account(&self) -> Option<String>;
    /// The registered signer's signature over `digest`; `None` once the service is gone.
    fn sign(&self, digest: &[u8; 32]) -> Option<Result<[u8; 65], String>>;
    /// `POST {endpoint}/v1/releases` with `body`: the status and the answer's bytes.
    fn post(
        &self,
        endpoint: &str,
        body: Bytes,
    ) -> impl Future<Output = Result<(u16, Bytes), String>> + Send;
    /// A batch of `sent` items left (none if 0), and `withdrawn` were dropped unsent.
    fn count(&self, sent: usize, withdrawn: usize);
}

impl Transport for Weak<AppState> {
    fn account(&self) -> Option<String> {
        Some(wire_hex(self.upgrade()?.account.as_slice()))
    }

    fn sign(&self, digest: &[u8; 32]) -> Option<Result<[u8; 65], String>> {
        let state = self.upgrade()?;
        Some(
            cifer_custody::sign_digest(&state.signer, digest)
                .map_err(|_| "the black box cannot sign".to_owned()),
        )
    }

    fn post(
        &self,
        endpoint: &str,
        body: Bytes,
    ) -> impl Future<Output = Result<(u16, Bytes), String>> + Send {
        let (state, endpoint) = (self.upgrade(), endpoint.to_owned());
        async move {
            let state = state.ok_or("the black box is shutting down")?;
            state.nodes.post_bytes(&endpoint, "/v1/releases", body).await
        }
    }

    fn count(&self, sent: usize, withdrawn: usize) {
        if let Some(state) = self.upgrade() {
            state.metrics.release_batch(sent, withdrawn);
        }
    }
}

/// One node's worker: a batch at a time, each one what queued up while the last was out.
async fn worker<T: Transport>(
    transport: T,
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
        // Nobody waits for these any more: do not ask the node for them.
        let queued = batch.len();
        batch.retain(|q| !q.reply.is_closed());
        transport.count(batch.len(), queued - batch.len());
        if batch.is_empty() {
            continue;
        }
        let answers = match exchange(&transport, &endpoint, &batch).await {
            Some(answers) => answers,
            // The service is gone: dropping the batch tells its waiters.
            None => return,
        };
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

/// Result of one batch: an answer per item, in order, or one reason for all.
type BatchOutcome = Result<Vec<Result<ReleaseAnswer, String>>, String>;

/// Signs, sends and reads one batch; `None` once the service is gone.
async fn exchange<T: Transport>(
    transport: &T,
    endpoint: &str,
    batch: &[Queued],
) -> Option<BatchOutcome> {
    let account = transport.account()?;
    let signature = match batch {
        // At low load every node's batch is this one item: it is signed once, by the
        // first of their workers.
        [only] => match only.item.solo.get() {
            Some(s) => Ok(*s),
            None => transport
                .sign(&cifer_custody::release_batch_digest(&[only.item.bound]))?
                .map(|s| *only.item.solo.get_or_init(|| s)),
        },
        _ => {
            let bounds: Vec<[u8; 32]> = batch.iter().map(|q| q.item.bound).collect();
            transport.sign(&cifer_custody::release_batch_digest(&bounds))?
        }
    };
    Some(send(transport, endpoint, batch, &account, signature).await)
}

async fn send<T: Transport>(
    transport: &T,
    endpoint: &str,
    batch: &[Queued],
    account: &str,
    signature: Result<[u8; 65], String>,
) -> BatchOutcome {
    let body = batch_body(account, &signature?, batch);
    let (status, bytes) = transport.post(endpoint, body).await?;
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

    type Answer = Box<dyn Fn(usize) -> (u16, String) + Send>;

    /// A node behind a gate: every post waits for a permit, then answers with `answer`
    /// of the number of items; everything it was asked is recorded.
    #[derive(Clone)]
    struct FakeNode(Arc<Fake>);

    struct Fake {
        posted: Mutex<Vec<serde_json::Value>>,
        signed: Mutex<Vec<[u8; 32]>>,
        counts: Mutex<Vec<(usize, usize)>>,
        gate: tokio::sync::Semaphore,
        answer: Mutex<Answer>,
    }

    impl FakeNode {
        fn new(permits: usize, answer: impl Fn(usize) -> (u16, String) + Send + 'static) -> Self {
            Self(Arc::new(Fake {
                posted: Mutex::new(Vec::new()),
                signed: Mutex::new(Vec::new()),
                counts: Mutex::new(Vec::new()),
                gate: tokio::sync::Semaphore::new(permits),
                answer: Mutex::new(Box::new(answer)),
            }))
        }

        fn posted(&self) -> Vec<serde_json::Value> {
            self.0.posted.lock().unwrap().clone()
        }
    }

    impl Transport for FakeNode {
        fn account(&self) -> Option<String> {
            Some("0xabcd".to_owned())
        }

        fn sign(&self, digest: &[u8; 32]) -> Option<Result<[u8; 65], String>> {
            let mut signed = self.0.signed.lock().unwrap();
            signed.push(*digest);
            // The n-th signature is n repeated: tests can tell which one a batch carried.
            Some(Ok([u8::try_from(signed.len()).unwrap(); 65]))
        }

        fn post(
            &self,
            _endpoint: &str,
            body: Bytes,
        ) -> impl Future<Output = Result<(u16, Bytes), String>> + Send {
            let fake = Arc::clone(&self.0);
            async move {
                let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let n = body["items"].as_array().unwrap().len();
                fake.posted.lock().unwrap().push(body);
                fake.gate.acquire().await.unwrap().forget();
                let (status, answer) = (fake.answer.lock().unwrap())(n);
                Ok((status, Bytes::from(answer)))
            }
        }

        fn count(&self, sent: usize, withdrawn: usize) {
            self.0.counts.lock().unwrap().push((sent, withdrawn));
        }
    }

    /// `{"results":[…]}` with fragment `[i]` for item `i`.
    fn fragments(n: usize) -> (u16, String) {
        let results: Vec<_> = (0..n)
            .map(|i| serde_json::json!({ "status": 200, "fragment": format!("0x{i:02x}") }))
            .collect();
        (200, serde_json::json!({ "results": results }).to_string())
    }

    fn item(i: u8) -> Arc<Item> {
        Arc::new(Item::new(Bytes::from(format!("{{\"i\":{i}}}")), [i; 32]))
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    type Asked = tokio::task::JoinHandle<Result<ReleaseAnswer, String>>;

    fn ask(releases: &Arc<Releases>, node: &FakeNode, endpoint: &'static str, i: u8) -> Asked {
        let (releases, node) = (Arc::clone(releases), node.clone());
        tokio::spawn(async move { releases.ask_via(|| node, endpoint, &item(i)).await })
    }

    #[tokio::test]
    async fn what_queues_while_a_batch_is_out_goes_next_together_and_withdrawn_items_stay() {
        let releases = Arc::new(Releases::default());
        let node = FakeNode::new(0, fragments);
        let a = ask(&releases, &node, "n1", 1);
        settle().await;
        assert_eq!(node.posted().len(), 1, "the first item leaves at once, alone");
        let (b, c, d) = (
            ask(&releases, &node, "n1", 2),
            ask(&releases, &node, "n1", 3),
            ask(&releases, &node, "n1", 4),
        );
        settle().await;
        d.abort(); // its decryption stopped waiting
        settle().await;
        assert_eq!(node.posted().len(), 1, "one batch out at a time");
        node.0.gate.add_permits(1);
        assert_eq!(a.await.unwrap(), Ok(ReleaseAnswer::Sealed(vec![0])));
        settle().await;
        let posted = node.posted();
        assert_eq!(posted.len(), 2);
        assert_eq!(posted[0]["items"], serde_json::json!([{ "i": 1 }]));
        assert_eq!(posted[1]["items"], serde_json::json!([{ "i": 2 }, { "i": 3 }]), "4 withdrawn");
        assert_eq!(posted[1]["blackBox"]["account"], "0xabcd");
        assert_eq!(posted[1]["blackBox"]["signature"], format!("0x{}", "02".repeat(65)));
        node.0.gate.add_permits(1);
        assert_eq!(b.await.unwrap(), Ok(ReleaseAnswer::Sealed(vec![0])));
        assert_eq!(c.await.unwrap(), Ok(ReleaseAnswer::Sealed(vec![1])));
        assert_eq!(
            *node.0.signed.lock().unwrap(),
            [
                cifer_custody::release_batch_digest(&[[1; 32]]),
                cifer_custody::release_batch_digest(&[[2; 32], [3; 32]]),
            ],
            "each batch signed over its own items' bindings, in order"
        );
        assert_eq!(*node.0.counts.lock().unwrap(), [(1, 0), (2, 1)]);
    }

    #[tokio::test]
    async fn a_one_item_batch_is_signed_once_for_every_node() {
        let releases = Arc::new(Releases::default());
        let node = FakeNode::new(8, fragments);
        let shared = item(9);
        let mut asked = Vec::new();
        for endpoint in ["n1", "n2", "n3"] {
            let (releases, node, shared) =
                (Arc::clone(&releases), node.clone(), Arc::clone(&shared));
            asked.push(tokio::spawn(
                async move { releases.ask_via(|| node, endpoint, &shared).await },
            ));
        }
        for a in asked {
            assert_eq!(a.await.unwrap(), Ok(ReleaseAnswer::Sealed(vec![0])));
        }
        assert_eq!(node.0.signed.lock().unwrap().len(), 1);
        let signatures: Vec<_> =
            node.posted().iter().map(|b| b["blackBox"]["signature"].clone()).collect();
        assert_eq!(signatures.len(), 3);
        assert!(signatures.iter().all(|s| *s == signatures[0]), "{signatures:?}");
    }

    #[tokio::test]
    async fn a_batch_refused_whole_or_answered_short_fails_every_item_it_carried() {
        let releases = Arc::new(Releases::default());
        let node = FakeNode::new(8, |_| {
            (404, r#"{"error":{"code":"not_found","message":"no such route"}}"#.to_owned())
        });
        assert_eq!(ask(&releases, &node, "n1", 1).await.unwrap(), Err("refused: not_found".into()));
        *node.0.answer.lock().unwrap() = Box::new(|n| fragments(n + 1));
        assert_eq!(
            ask(&releases, &node, "n1", 2).await.unwrap(),
            Err("answer: 2 results for 1 requests".into())
        );
        *node.0.answer.lock().unwrap() =
            Box::new(|_| (422, r#"{"error":{"code":"future","message":"m"}}"#.to_owned()));
        assert_eq!(ask(&releases, &node, "n1", 3).await.unwrap(), Ok(ReleaseAnswer::Future));
        *node.0.answer.lock().unwrap() = Box::new(|_| (200, "<html>".to_owned()));
        let garbled = ask(&releases, &node, "n1", 4).await.unwrap().unwrap_err();
        assert!(garbled.starts_with("answer: "), "{garbled}");
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
