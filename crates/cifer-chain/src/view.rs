//! The view: a background poller keeping the agreed head, and queries pinned to it.

use std::collections::HashMap;
use std::fmt;
use std::future::IntoFuture;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy::eips::{BlockId, BlockNumberOrTag};
use alloy::network::{Ethereum, TransactionBuilder};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{DynProvider, Provider, RootProvider};
use alloy::rpc::json_rpc::ErrorPayload;
use alloy::rpc::types::{Filter, TransactionRequest};
use alloy::sol_types::{SolCall, SolInterface};
use alloy::transports::{RpcError, TransportError};
use cifer_bindings::ClusterRegistry as CR;
use cifer_bindings::SecretsController as SC;
use futures_util::future::join_all;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::config::{ChainConfig, redact};
use crate::error::{ChainError, Result, Unavailable};
use crate::events::{self, ChainEvent};
use crate::records::{BlackBox, Cluster, Head, Node, Secret};

/// Events buffered per subscriber before it sees `RecvError::Lagged`.
pub const EVENT_CAPACITY: usize = 4096;
/// Most blocks asked for in one `eth_getLogs` (public RPCs cap the range).
pub const LOG_RANGE: u64 = 1000;
/// Most answers kept in the per-head query cache; when full it is emptied (it is emptied
/// at every new head anyway).
pub const CACHE_CAPACITY: usize = 65_536;
/// The EIP-1271 magic value `isValidSignature.selector`, as the 32-byte word a compliant
/// wallet returns.
const ERC1271_MAGIC: [u8; 4] = [0x16, 0x26, 0xba, 0x7e];

alloy::sol! {
    /// EIP-1271 (contract signatures).
    interface IERC1271 {
        /// Returns the magic value 0x1626ba7e when `signature` is valid for `hash`.
        function isValidSignature(bytes32 hash, bytes signature) external view returns (bytes4);
    }
}

/// The view's state: a head the RPCs agree on, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Every RPC answered and agreed on this head, recently enough, and it is not lagging.
    Healthy(Head),
    /// No trusted head: deny.
    Unavailable(Unavailable),
}

impl Health {
    /// The trusted head, or why there is none.
    pub fn head(&self) -> Result<Head, Unavailable> {
        match self {
            Self::Healthy(head) => Ok(*head),
            Self::Unavailable(reason) => Err(reason.clone()),
        }
    }

    /// Whether queries are answered.
    pub fn is_healthy(&self) -> bool {
        matches!(self, Self::Healthy(_))
    }
}

struct Rpc {
    /// Redacted, for errors and logs.
    url: String,
    /// The forms of the full URL that transport errors may quote (they are scrubbed).
    raw: [String; 2],
    provider: DynProvider,
}

impl Rpc {
    /// `detail` with the full URL replaced by its redacted form.
    fn scrub(&self, detail: String) -> String {
        let mut d = detail;
        for raw in &self.raw {
            if !raw.is_empty() && d.contains(raw.as_str()) {
                d = d.replace(raw.as_str(), &self.url);
            }
        }
        d
    }
}

#[derive(Debug, Clone)]
struct State {
    /// Outcome of the last poll.
    status: Result<Head, Unavailable>,
    /// When a poll last succeeded.
    last_success: Option<Instant>,
}

struct Shared {
    config: ChainConfig,
    rpcs: Vec<Rpc>,
    state: watch::Receiver<State>,
    events: broadcast::Sender<ChainEvent>,
    /// Next block whose events are delivered.
    cursor: AtomicU64,
    /// Answers at the trusted head ("warm chain state").
    cache: Mutex<Cache>,
    /// Queries sent to the RPCs (cache misses and uncached queries).
    rpc_queries: AtomicU64,
    /// Queries answered from the cache.
    cache_hits: AtomicU64,
}

/// What a query asked, as the cache's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Query {
    /// `eth_call(to, data)`.
    Call { to: Address, data: Bytes },
    /// `eth_getCode(account)`, as "has code".
    Code(Address),
}

/// What the chain answered (never an RPC failure: those are not cached).
#[derive(Debug, Clone)]
enum Answer {
    /// `Ok(output)` or `Err(revert data)`; both are facts about the block.
    Call(Result<Bytes, Bytes>),
    /// Whether the account has code.
    Code(bool),
}

/// Answers pinned to one block hash. The poller re-tags it at every poll: a new trusted
/// head or an unhealthy view empties it, so an answer is served only while the head it is
/// about is still the trusted head.
#[derive(Debug, Default)]
struct Cache {
    /// The trusted head's hash the entries are about; `None` while the view is unhealthy.
    head: Option<B256>,
    entries: HashMap<Query, Answer>,
}

/// How the view's contract queries were answered since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Queries sent to an RPC (`eth_call`, `eth_getCode`): cache misses, EIP-1271 checks,
    /// and queries pinned to a head that is no longer the trusted one.
    pub rpc: u64,
    /// Queries answered from the per-head cache.
    pub cached: u64,
}

/// Seconds since `timestamp` (zero for a timestamp in the future).
fn age(timestamp: u64) -> Duration {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Duration::from_secs(now.saturating_sub(timestamp))
}

/// Runs `fut` with `timeout`; the error is a printable detail with the URL scrubbed.
async fn timed<T>(
    rpc: &Rpc,
    timeout: Duration,
    fut: impl IntoFuture<Output = Result<T, TransportError>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, fut.into_future()).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(rpc.scrub(e.to_string())),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

/// Whether a JSON-RPC error is an EVM revert (as opposed to a node or transport failure).
fn is_revert(e: &ErrorPayload) -> bool {
    e.code == 3 || e.message.to_ascii_lowercase().contains("revert")
}

impl Shared {
    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tags the cache with the trusted head's hash (`None`: unhealthy), emptying it unless
    /// the tag is unchanged.
    fn retag_cache(&self, head: Option<B256>) {
        let mut cache = self.cache();
        if cache.head != head {
            cache.head = head;
            cache.entries = HashMap::new();
        }
    }

    /// The cached answer to `query` at `head`, if `head` is the trusted head right now.
    /// Health is checked first: an unhealthy view empties the cache and fails.
    fn cached(&self, head: &Head, query: &Query) -> Result<Option<Answer>> {
        let current = match self.health() {
            Health::Healthy(current) => current,
            Health::Unavailable(reason) => {
                self.retag_cache(None);
                return Err(reason.into());
            }
        };
        if current.hash != head.hash {
            return Ok(None);
        }
        let cache = self.cache();
        if cache.head != Some(head.hash) {
            return Ok(None);
        }
        let hit = cache.entries.get(query).cloned();
        drop(cache);
        if hit.is_some() {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
        }
        Ok(hit)
    }

    /// Keeps `answer` (obtained at `head`) if the cache is still about `head`.
    fn remember(&self, head: &Head, query: Query, answer: Answer) {
        let mut cache = self.cache();
        if cache.head != Some(head.hash) {
            return;
        }
        if cache.entries.len() >= CACHE_CAPACITY {
            cache.entries.clear();
        }
        cache.entries.insert(query, answer);
    }

    fn health(&self) -> Health {
        if self.state.has_changed().is_err() {
            return Health::Unavailable(Unavailable::Stopped);
        }
        let state = self.state.borrow().clone();
        let head = match state.status {
            Ok(head) => head,
            Err(reason) => return Health::Unavailable(reason),
        };
        let since = state.last_success.map_or(Duration::MAX, |t| t.elapsed());
        if since > self.config.staleness_bound() {
            return Health::Unavailable(Unavailable::Stale { since });
        }
        let age = age(head.timestamp);
        if age > self.config.max_lag {
            return Health::Unavailable(Unavailable::Lagging { age });
        }
        Health::Healthy(head)
    }

    /// The first RPC (in configuration order) that answers `f` in time.
    async fn first_answer<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: Fn(DynProvider) -> Fut,
        Fut: IntoFuture<Output = Result<T, TransportError>>,
    {
        let mut last = None;
        for rpc in &self.rpcs {
            match timed(rpc, self.config.rpc_timeout, f(rpc.provider.clone())).await {
                Ok(v) => return Ok(v),
                Err(detail) => {
                    tracing::debug!(rpc = %rpc.url, %detail, "query failed, trying the next rpc");
                    last = Some((rpc.url.clone(), detail));
                }
            }
        }
        let (url, detail) = last.unwrap_or_else(|| ("-".into(), "no rpc configured".into()));
        Err(ChainError::Rpc { url, detail })
    }
}

/// Kills the background task when the last [`ChainView`] clone goes.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The chain view (crate docs). Cheap to clone; the background poller stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct ChainView {
    shared: Arc<Shared>,
    _task: Arc<AbortOnDrop>,
}

impl fmt::Debug for ChainView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainView")
            .field("chain_id", &self.shared.config.chain_id)
            .field("rpcs", &self.shared.rpcs.iter().map(|r| &r.url).collect::<Vec<_>>())
            .field("health", &self.health())
            .finish()
    }
}

impl ChainView {
    /// Validates `config`, polls every RPC once, and spawns the poller on the current tokio
    /// runtime. An RPC that cannot be reached does not fail the start: the view starts (or
    /// stays) [`Unavailable`] until every RPC answers and agrees.
    ///
    /// # Errors
    ///
    /// [`ChainError::Config`] for an unusable configuration; [`ChainError::Unavailable`] with
    /// [`Unavailable::WrongChainId`] when an RPC serves another chain.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn start(config: ChainConfig) -> Result<Self> {
        let urls = config.validate()?;
        let rpcs = urls
            .iter()
            .zip(&config.rpc_urls)
            .map(|(url, raw)| Rpc {
                url: redact(url),
                raw: [url.as_str().to_owned(), raw.clone()],
                provider: RootProvider::<Ethereum>::new_http(url.clone()).erased(),
            })
            .collect::<Vec<_>>();
        let (tx, rx) =
            watch::channel(State { status: Err(Unavailable::NotSynced), last_success: None });
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let checked = vec![false; rpcs.len()];
        let shared = Arc::new(Shared {
            cursor: AtomicU64::new(config.start_block),
            config,
            rpcs,
            state: rx,
            events,
            cache: Mutex::new(Cache::default()),
            rpc_queries: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
        });
        let mut poller = Poller { shared: Arc::clone(&shared), tx, checked, trusted: None };
        poller.step().await;
        if let Err(reason @ Unavailable::WrongChainId { .. }) = &shared.state.borrow().status {
            return Err(reason.clone().into());
        }
        let task = tokio::spawn(poller.run());
        Ok(Self { shared, _task: Arc::new(AbortOnDrop(task)) })
    }

    /// The configuration.
    pub fn config(&self) -> &ChainConfig {
        &self.shared.config
    }

    /// The trusted head or why there is none, as of now (staleness and lag are evaluated at
    /// the call, not only at the last poll).
    pub fn health(&self) -> Health {
        self.shared.health()
    }

    /// The trusted head.
    ///
    /// # Errors
    ///
    /// [`ChainError::Unavailable`] when the view is not healthy.
    pub fn head(&self) -> Result<Head> {
        Ok(self.health().head()?)
    }

    /// A handle answering every query at the current trusted head. Take one per decision so
    /// that all its checks (freshness, authorization, black box) see the same block.
    ///
    /// # Errors
    ///
    /// [`ChainError::Unavailable`] when the view is not healthy.
    pub fn pinned(&self) -> Result<Pinned> {
        Ok(Pinned { shared: Arc::clone(&self.shared), head: self.head()? })
    }

    /// Events of both contracts, in block order, from `config.start_block` on. Blocks are
    /// processed (and the cursor advances) only while at least one receiver exists, so the
    /// first subscriber misses nothing; later subscribers get what is processed after they
    /// subscribe. Events are delivered up to the trusted head: a reorg deeper than the head is
    /// not undone. A receiver that falls [`EVENT_CAPACITY`] events behind gets
    /// `RecvError::Lagged` and must resynchronize from the contracts.
    pub fn subscribe(&self) -> broadcast::Receiver<ChainEvent> {
        self.shared.events.subscribe()
    }

    /// The next block whose events will be delivered: every event of an earlier block has
    /// been sent to the subscribers.
    pub fn events_cursor(&self) -> u64 {
        self.shared.cursor.load(Ordering::Acquire)
    }

    /// How many queries went to an RPC and how many were answered from the per-head cache
    /// (for metrics and tests).
    pub fn query_stats(&self) -> QueryStats {
        QueryStats {
            rpc: self.shared.rpc_queries.load(Ordering::Relaxed),
            cached: self.shared.cache_hits.load(Ordering::Relaxed),
        }
    }

    /// [`Pinned::is_authorized`] at the current head.
    ///
    /// # Errors
    ///
    /// As [`Pinned::is_authorized`], and [`ChainError::Unavailable`].
    pub async fn is_authorized(&self, secret_id: U256, account: Address) -> Result<bool> {
        self.pinned()?.is_authorized(secret_id, account).await
    }

    /// [`Pinned::secret`] at the current head.
    ///
    /// # Errors
    ///
    /// As [`Pinned::secret`], and [`ChainError::Unavailable`].
    pub async fn secret(&self, secret_id: U256) -> Result<Option<Secret>> {
        self.pinned()?.secret(secret_id).await
    }

    /// [`Pinned::black_box`] at the current head.
    ///
    /// # Errors
    ///
    /// As [`Pinned::black_box`], and [`ChainError::Unavailable`].
    pub async fn black_box(&self, account: Address) -> Result<Option<BlackBox>> {
        self.pinned()?.black_box(account).await
    }

    /// [`Pinned::node`] at the current head.
    ///
    /// # Errors
    ///
    /// As [`Pinned::node`], and [`ChainError::Unavailable`].
    pub async fn node(&self, node_id: u32) -> Result<Option<Node>> {
        self.pinned()?.node(node_id).await
    }

    /// [`Pinned::cluster`] at the current head.
    ///
    /// # Errors
    ///
    /// As [`Pinned::cluster`], and [`ChainError::Unavailable`].
    pub async fn cluster(&self, cluster_id: u32) -> Result<Option<Cluster>> {
        self.pinned()?.cluster(cluster_id).await
    }

    /// [`Pinned::is_cluster_active`] at the current head.
    ///
    /// # Errors
    ///
    /// As [`Pinned::is_cluster_active`], and [`ChainError::Unavailable`].
    pub async fn is_cluster_active(&self, cluster_id: u32) -> Result<bool> {
        self.pinned()?.is_cluster_active(cluster_id).await
    }

    /// [`Pinned::has_code`] at the current head.
    ///
    /// # Errors
    ///
    /// As [`Pinned::has_code`], and [`ChainError::Unavailable`].
    pub async fn has_code(&self, account: Address) -> Result<bool> {
        self.pinned()?.has_code(account).await
    }

    /// [`Pinned::is_valid_signature_1271`] at the current head.
    ///
    /// # Errors
    ///
    /// As [`Pinned::is_valid_signature_1271`], and [`ChainError::Unavailable`].
    pub async fn is_valid_signature_1271(
        &self,
        account: Address,
        digest: B256,
        signature: Bytes,
    ) -> Result<bool> {
        self.pinned()?.is_valid_signature_1271(account, digest, signature).await
    }
}

/// Queries at one trusted head (by block hash, EIP-1898 `requireCanonical`). Every query
/// also fails with [`ChainError::Unavailable`] if the view has become unhealthy since.
#[derive(Clone)]
pub struct Pinned {
    shared: Arc<Shared>,
    head: Head,
}

impl fmt::Debug for Pinned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pinned").field("head", &self.head).finish_non_exhaustive()
    }
}

impl Pinned {
    /// The head every answer of this handle is about.
    pub fn head(&self) -> Head {
        self.head
    }

    fn block(&self) -> BlockId {
        BlockId::hash_canonical(self.head.hash)
    }

    fn ensure_healthy(&self) -> Result<()> {
        self.shared.health().head()?;
        Ok(())
    }

    /// `eth_call` at the head: `Ok(output)`, or `Err(revert data)` if the call reverted.
    /// Answered from the cache when `cache` and the head is still the trusted head.
    async fn call_raw(
        &self,
        to: Address,
        data: Bytes,
        cache: bool,
    ) -> Result<Result<Bytes, Bytes>> {
        let query = Query::Call { to, data: data.clone() };
        if cache {
            if let Some(Answer::Call(answer)) = self.shared.cached(&self.head, &query)? {
                return Ok(answer);
            }
        } else {
            self.ensure_healthy()?;
        }
        let block = self.block();
        self.shared.rpc_queries.fetch_add(1, Ordering::Relaxed);
        let answer = self
            .shared
            .first_answer(|p| {
                let tx = TransactionRequest::default().with_to(to).with_input(data.clone());
                let call = p.call(tx).block(block);
                async move {
                    match call.await {
                        Ok(out) => Ok(Ok(out)),
                        Err(RpcError::ErrorResp(e)) if is_revert(&e) => {
                            Ok(Err(e.as_revert_data().unwrap_or_default()))
                        }
                        Err(e) => Err(e),
                    }
                }
            })
            .await?;
        if cache {
            self.shared.remember(&self.head, query, Answer::Call(answer.clone()));
        }
        Ok(answer)
    }

    /// A view function of our own contracts: `Ok(Err(revert data))` if it reverted.
    async fn try_view<C: SolCall>(&self, to: Address, call: C) -> Result<Result<C::Return, Bytes>> {
        match self.call_raw(to, call.abi_encode().into(), true).await? {
            Ok(out) => C::abi_decode_returns(&out)
                .map(Ok)
                .map_err(|e| ChainError::Decode { what: C::SIGNATURE, detail: e.to_string() }),
            Err(revert) => Ok(Err(revert)),
        }
    }

    /// A view function of our own contracts that never reverts on these arguments.
    async fn view<C: SolCall>(&self, to: Address, call: C) -> Result<C::Return> {
        self.try_view(to, call).await?.map_err(|_| ChainError::Reverted { to })
    }

    /// `SecretsController.isAuthorized(secretId, account)`: the owner or a current,
    /// unexpired delegate of an active secret in an active cluster.
    ///
    /// # Errors
    ///
    /// [`ChainError::Unavailable`], [`ChainError::Rpc`], or a contract that answers wrongly
    /// ([`ChainError::Reverted`], [`ChainError::Decode`]).
    pub async fn is_authorized(&self, secret_id: U256, account: Address) -> Result<bool> {
        let to = self.shared.config.secrets_controller;
        self.view(to, SC::isAuthorizedCall { secretId: secret_id, account }).await
    }

    /// `SecretsController.secret(secretId)`; `None` for an unknown id.
    ///
    /// # Errors
    ///
    /// As [`is_authorized`](Self::is_authorized).
    pub async fn secret(&self, secret_id: U256) -> Result<Option<Secret>> {
        let to = self.shared.config.secrets_controller;
        Secret::decode(self.view(to, SC::secretCall { secretId: secret_id }).await?)
    }

    /// `ClusterRegistry.blackBox(account)`; `None` unless registered.
    ///
    /// # Errors
    ///
    /// As [`is_authorized`](Self::is_authorized).
    pub async fn black_box(&self, account: Address) -> Result<Option<BlackBox>> {
        let to = self.shared.config.cluster_registry;
        Ok(BlackBox::decode(self.view(to, CR::blackBoxCall { account }).await?))
    }

    /// `ClusterRegistry.node(nodeId)`; `None` for an unknown id.
    ///
    /// # Errors
    ///
    /// As [`is_authorized`](Self::is_authorized).
    pub async fn node(&self, node_id: u32) -> Result<Option<Node>> {
        let to = self.shared.config.cluster_registry;
        Node::decode(self.view(to, CR::nodeCall { nodeId: node_id }).await?)
    }

    /// `ClusterRegistry.cluster(clusterId)`; `None` for an unknown id.
    ///
    /// # Errors
    ///
    /// As [`is_authorized`](Self::is_authorized).
    pub async fn cluster(&self, cluster_id: u32) -> Result<Option<Cluster>> {
        let to = self.shared.config.cluster_registry;
        match self.try_view(to, CR::clusterCall { clusterId: cluster_id }).await? {
            Ok(c) => Cluster::decode(c),
            // The registry reverts on an unknown id; any other revert is an error.
            Err(revert) => match CR::ClusterRegistryErrors::abi_decode(&revert) {
                Ok(CR::ClusterRegistryErrors::ClusterRegistryUnknownCluster(e))
                    if e.clusterId == cluster_id =>
                {
                    Ok(None)
                }
                _ => Err(ChainError::Reverted { to }),
            },
        }
    }

    /// `ClusterRegistry.isClusterActive(clusterId)`.
    ///
    /// # Errors
    ///
    /// As [`is_authorized`](Self::is_authorized).
    pub async fn is_cluster_active(&self, cluster_id: u32) -> Result<bool> {
        let to = self.shared.config.cluster_registry;
        self.view(to, CR::isClusterActiveCall { clusterId: cluster_id }).await
    }

    /// Whether `account` has code (a contract wallet, whose signatures go through
    /// EIP-1271).
    ///
    /// # Errors
    ///
    /// [`ChainError::Unavailable`], [`ChainError::Rpc`].
    pub async fn has_code(&self, account: Address) -> Result<bool> {
        let query = Query::Code(account);
        if let Some(Answer::Code(has)) = self.shared.cached(&self.head, &query)? {
            return Ok(has);
        }
        let block = self.block();
        self.shared.rpc_queries.fetch_add(1, Ordering::Relaxed);
        let code = self.shared.first_answer(|p| p.get_code_at(account).block_id(block)).await?;
        let has = !code.is_empty();
        self.shared.remember(&self.head, query, Answer::Code(has));
        Ok(has)
    }

    /// EIP-1271: `account.isValidSignature(digest, signature)` returns the magic value
    /// (the 32-byte word `0x1626ba7e` followed by zeros, as OpenZeppelin's `SignatureChecker`
    /// requires). A revert, an account without code, or a short or different return is
    /// `false`.
    ///
    /// # Errors
    ///
    /// [`ChainError::Unavailable`], [`ChainError::Rpc`] (deny on these too).
    pub async fn is_valid_signature_1271(
        &self,
        account: Address,
        digest: B256,
        signature: Bytes,
    ) -> Result<bool> {
        let data = IERC1271::isValidSignatureCall { hash: digest, signature }.abi_encode();
        // Not cached: every request has its own digest.
        Ok(match self.call_raw(account, data.into(), false).await? {
            Err(_revert) => false,
            Ok(out) => {
                out.len() >= 32 && out[..4] == ERC1271_MAGIC && out[4..32].iter().all(|b| *b == 0)
            }
        })
    }
}

/// The background task's state.
struct Poller {
    shared: Arc<Shared>,
    tx: watch::Sender<State>,
    /// RPCs whose chain id has been checked.
    checked: Vec<bool>,
    /// Highest head number trusted so far.
    trusted: Option<u64>,
}

impl Poller {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(self.shared.config.poll_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // The first tick is immediate; `start` has just polled.
        tick.tick().await;
        loop {
            tick.tick().await;
            self.step().await;
        }
    }

    async fn step(&mut self) {
        let was_healthy = self.tx.borrow().status.is_ok();
        match self.poll().await {
            Ok(head) => {
                if !was_healthy {
                    tracing::info!(number = head.number, hash = %head.hash, "chain view available");
                }
                self.trusted = Some(self.trusted.map_or(head.number, |t| t.max(head.number)));
                self.tx
                    .send_replace(State { status: Ok(head), last_success: Some(Instant::now()) });
                // After the new state is visible: an answer about the previous head that
                // is remembered in between is dropped here.
                self.shared.retag_cache(Some(head.hash));
                if self.shared.events.receiver_count() > 0
                    && let Err(e) = self.deliver_events(&head).await
                {
                    tracing::warn!(error = %e, "event delivery failed; retrying next poll");
                }
            }
            Err(reason) => {
                if was_healthy {
                    tracing::warn!(%reason, "chain view unavailable");
                } else {
                    tracing::debug!(%reason, "chain view still unavailable");
                }
                self.tx.send_modify(|s| s.status = Err(reason));
                self.shared.retag_cache(None);
            }
        }
    }

    /// One round: chain ids (until checked), every RPC's latest block, every RPC's block at
    /// the lowest height, agreement, monotonicity and lag.
    async fn poll(&mut self) -> Result<Head, Unavailable> {
        let shared = Arc::clone(&self.shared);
        let (config, rpcs) = (&shared.config, &shared.rpcs);
        let timeout = config.rpc_timeout;
        let unreachable =
            |rpc: &Rpc, detail| Unavailable::Unreachable { url: rpc.url.clone(), detail };

        let unchecked: Vec<usize> = (0..rpcs.len()).filter(|i| !self.checked[*i]).collect();
        let ids = join_all(unchecked.iter().map(|&i| {
            let rpc = &rpcs[i];
            async move { (i, timed(rpc, timeout, rpc.provider.get_chain_id()).await) }
        }))
        .await;
        for (i, id) in ids {
            let rpc = &rpcs[i];
            match id {
                Err(detail) => return Err(unreachable(rpc, detail)),
                Ok(actual) if actual != config.chain_id => {
                    return Err(Unavailable::WrongChainId {
                        url: rpc.url.clone(),
                        expected: config.chain_id,
                        actual,
                    });
                }
                Ok(_) => self.checked[i] = true,
            }
        }

        let latest =
            join_all(rpcs.iter().map(|rpc| fetch(rpc, timeout, BlockNumberOrTag::Latest))).await;
        let mut heads = Vec::with_capacity(rpcs.len());
        for (rpc, head) in rpcs.iter().zip(latest) {
            heads.push(head.map_err(|d| unreachable(rpc, d))?);
        }
        let low = heads.iter().map(|h| h.number).min().ok_or(Unavailable::NotSynced)?;
        let at_low = join_all(rpcs.iter().zip(&heads).map(|(rpc, head)| async move {
            if head.number == low {
                Ok(*head)
            } else {
                fetch(rpc, timeout, BlockNumberOrTag::Number(low)).await
            }
        }))
        .await;
        let mut agreed: Option<Head> = None;
        for (rpc, head) in rpcs.iter().zip(at_low) {
            let head = head.map_err(|d| unreachable(rpc, d))?;
            match agreed {
                None if head.number == low => agreed = Some(head),
                Some(a) if a == head => {}
                _ => return Err(Unavailable::Disagree { number: low }),
            }
        }
        let head = agreed.ok_or(Unavailable::NotSynced)?;
        if let Some(trusted) = self.trusted
            && head.number < trusted
        {
            return Err(Unavailable::Behind { trusted, agreed: head.number });
        }
        let age = age(head.timestamp);
        if age > config.max_lag {
            return Err(Unavailable::Lagging { age });
        }
        Ok(head)
    }

    /// Sends the events of blocks `cursor..=head.number`, chunk by chunk; the cursor advances
    /// past a chunk only once all of it is decoded and sent.
    async fn deliver_events(&self, head: &Head) -> Result<()> {
        let shared = &self.shared;
        let config = &shared.config;
        let mut from = shared.cursor.load(Ordering::Acquire);
        while from <= head.number {
            let to = from.saturating_add(LOG_RANGE - 1).min(head.number);
            let filter = Filter::new()
                .address(vec![config.secrets_controller, config.cluster_registry])
                .from_block(from)
                .to_block(to);
            let logs = shared
                .first_answer(|p| {
                    let filter = filter.clone();
                    async move { p.get_logs(&filter).await }
                })
                .await?;
            let mut out = Vec::with_capacity(logs.len());
            for log in logs.iter().filter(|l| !l.removed) {
                if log.block_number == Some(head.number) && log.block_hash != Some(head.hash) {
                    return Err(ChainError::Rpc {
                        url: "-".into(),
                        detail: format!("logs of block {} come from another fork", head.number),
                    });
                }
                if let Some(ev) =
                    events::decode(log, config.secrets_controller, config.cluster_registry)?
                {
                    out.push(ev);
                }
            }
            out.sort_by_key(|e| (e.block_number, e.log_index));
            for ev in out {
                // No receiver left: the events of this chunk are lost to nobody.
                let _ = shared.events.send(ev);
            }
            shared.cursor.store(to + 1, Ordering::Release);
            from = to + 1;
        }
        Ok(())
    }
}

/// `eth_getBlockByNumber(tag)` as a [`Head`].
async fn fetch(rpc: &Rpc, timeout: Duration, tag: BlockNumberOrTag) -> Result<Head, String> {
    let block = timed(rpc, timeout, rpc.provider.get_block_by_number(tag))
        .await?
        .ok_or_else(|| format!("no block {tag}"))?;
    Ok(Head {
        number: block.header.number,
        hash: block.header.hash,
        timestamp: block.header.timestamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revert_classification() {
        let revert = ErrorPayload { code: 3, message: "execution reverted".into(), data: None };
        assert!(is_revert(&revert));
        let bare = ErrorPayload { code: -32000, message: "execution reverted".into(), data: None };
        assert!(is_revert(&bare));
        let missing = ErrorPayload { code: -32001, message: "header not found".into(), data: None };
        assert!(!is_revert(&missing));
    }

    #[test]
    fn age_saturates() {
        assert_eq!(age(u64::MAX), Duration::ZERO);
        assert!(age(0) > Duration::from_secs(1_000_000_000));
    }
}
