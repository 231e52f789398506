//! The on-chain records the view answers with, decoded from the bindings' return types.

use alloy::primitives::{Address, B256};
use cifer_bindings::{IClusterRegistry, ISecretsController, secret_state};

use crate::error::{ChainError, Result};

/// A block all configured RPCs agree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Head {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// Block timestamp (unix seconds).
    pub timestamp: u64,
}

/// Lifecycle of a secret (`secret(id).state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretState {
    /// Created and not shredded.
    Active,
    /// Shredded for good: authorizes nobody, fragments are deleted.
    Shredded,
}

/// A secret's record in `SecretsController`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Secret {
    /// The owner.
    pub owner: Address,
    /// The cluster holding its fragments.
    pub cluster_id: u32,
    /// Active or shredded.
    pub state: SecretState,
    /// Public-key suite (`cifer_bindings::suite`).
    pub suite: u8,
    /// Delegation epoch (bumped when ownership changes hands).
    pub delegate_epoch: u64,
    /// `keccak256` of the secret's public key.
    pub public_key_hash: B256,
    /// Pending owner of a two-step transfer, or zero.
    pub pending_owner: Address,
}

impl Secret {
    /// `None` for an unknown id.
    pub(crate) fn decode(s: ISecretsController::Secret) -> Result<Option<Self>> {
        let state = match s.state {
            secret_state::NONE => return Ok(None),
            secret_state::ACTIVE => SecretState::Active,
            secret_state::SHREDDED => SecretState::Shredded,
            other => return Err(bad("secret state", other)),
        };
        Ok(Some(Self {
            owner: s.owner,
            cluster_id: s.clusterId,
            state,
            suite: s.suite,
            delegate_epoch: s.delegateEpoch.to::<u64>(),
            public_key_hash: s.publicKeyHash,
            pending_owner: s.pendingOwner,
        }))
    }
}

/// A registered black box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlackBox {
    /// The key that signs per-request response keys off chain.
    pub signer: Address,
    /// Hash of its attestation.
    pub attestation_hash: B256,
}

impl BlackBox {
    /// `None` unless registered.
    pub(crate) fn decode(b: IClusterRegistry::BlackBox) -> Option<Self> {
        b.registered.then_some(Self { signer: b.signer, attestation_hash: b.attestationHash })
    }
}

/// Status of a registered node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeStatus {
    /// Serving.
    Active,
    /// Removed or left, for good.
    Retired,
}

/// A registered shard node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Node {
    /// The operator account.
    pub operator: Address,
    /// Active or retired.
    pub status: NodeStatus,
    /// Its cluster (0 before it joins one).
    pub cluster_id: u32,
    /// `keccak256` of its ML-KEM-768 transport key.
    pub public_key_hash: B256,
    /// Hash of its attestation.
    pub attestation_hash: B256,
    /// Its HTTP endpoint.
    pub endpoint: String,
}

impl Node {
    /// `None` for an unknown id.
    pub(crate) fn decode(n: IClusterRegistry::Node) -> Result<Option<Self>> {
        let status = match n.status {
            0 => return Ok(None),
            1 => NodeStatus::Active,
            2 => NodeStatus::Retired,
            other => return Err(bad("node status", other)),
        };
        Ok(Some(Self {
            operator: n.operator,
            status,
            cluster_id: n.clusterId,
            public_key_hash: n.publicKeyHash,
            attestation_hash: n.attestationHash,
            endpoint: n.endpoint,
        }))
    }
}

/// Status of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClusterStatus {
    /// Active (usable only while `active_members >= threshold`, see
    /// [`Cluster::is_active`]).
    Active,
    /// Deactivated.
    Inactive,
}

/// A cluster of shard nodes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cluster {
    /// Active or inactive.
    pub status: ClusterStatus,
    /// Fragments needed to rebuild a seed.
    pub threshold: u8,
    /// Number of members.
    pub size: u8,
    /// Members not retired.
    pub active_members: u8,
    /// Node ids in fragment order.
    pub members: Vec<u32>,
}

impl Cluster {
    /// `None` for an unknown id.
    pub(crate) fn decode(c: IClusterRegistry::Cluster) -> Result<Option<Self>> {
        let status = match c.status {
            0 => return Ok(None),
            1 => ClusterStatus::Active,
            2 => ClusterStatus::Inactive,
            other => return Err(bad("cluster status", other)),
        };
        Ok(Some(Self {
            status,
            threshold: c.threshold,
            size: c.size,
            active_members: c.activeMembers,
            members: c.members,
        }))
    }

    /// The contract's `isClusterActive`: status active and enough active members.
    pub fn is_active(&self) -> bool {
        self.status == ClusterStatus::Active && self.active_members >= self.threshold
    }
}

fn bad(what: &'static str, value: u8) -> ChainError {
    ChainError::Decode { what, detail: format!("unknown value {value}") }
}
