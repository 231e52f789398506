//! The contracts' events the services act on, decoded with the bindings' event types.

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::rpc::types::Log;
use alloy::sol_types::SolEventInterface;
use cifer_bindings::ClusterRegistry::ClusterRegistryEvents;
use cifer_bindings::SecretsController::SecretsControllerEvents;

use crate::error::{ChainError, Result};

/// One event at its place in the chain. Events arrive in block order, and in log order
/// within a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainEvent {
    /// Block of the log.
    pub block_number: u64,
    /// Hash of that block.
    pub block_hash: B256,
    /// Index of the log in its block.
    pub log_index: u64,
    /// What happened.
    pub kind: ChainEventKind,
}

/// The events the shard node and the black box act on. Other events of the two contracts
/// (audit anchors, fees, governance transfers, pending secret transfers) are not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainEventKind {
    /// `SecretsController.SecretCreated`.
    SecretCreated {
        /// New id.
        secret_id: U256,
        /// Its owner.
        owner: Address,
        /// Its cluster.
        cluster_id: u32,
        /// Its public-key suite.
        suite: u8,
        /// `keccak256` of its public key.
        public_key_hash: B256,
        /// The public key itself (suite 0x01: the 1,184-byte ML-KEM-768 encapsulation key).
        public_key: Bytes,
    },
    /// `SecretsController.DelegateAdded`.
    DelegateAdded {
        /// The secret.
        secret_id: U256,
        /// The delegate.
        delegate: Address,
        /// Expiry (unix seconds, 0 = none).
        expires_at: u64,
    },
    /// `SecretsController.DelegateRevoked`.
    DelegateRevoked {
        /// The secret.
        secret_id: U256,
        /// The delegate.
        delegate: Address,
    },
    /// `SecretsController.SecretOwnershipTransferred` (all delegations are void).
    SecretOwnershipTransferred {
        /// The secret.
        secret_id: U256,
        /// Former owner.
        previous_owner: Address,
        /// New owner.
        new_owner: Address,
    },
    /// `SecretsController.SecretShredded`: nodes delete the secret's fragment.
    SecretShredded {
        /// The secret.
        secret_id: U256,
        /// Its owner.
        owner: Address,
    },
    /// `ClusterRegistry.NodeRegistered`.
    NodeRegistered {
        /// New id.
        node_id: u32,
        /// Operator account.
        operator: Address,
        /// `keccak256` of its transport key.
        public_key_hash: B256,
    },
    /// `ClusterRegistry.NodeUpdated` (endpoint, key or attestation changed).
    NodeUpdated {
        /// The node.
        node_id: u32,
        /// `keccak256` of its (new) transport key.
        public_key_hash: B256,
    },
    /// `ClusterRegistry.NodeRemoved` (by governance).
    NodeRemoved {
        /// The node.
        node_id: u32,
        /// Its operator.
        operator: Address,
    },
    /// `ClusterRegistry.NodeLeft` (by its operator).
    NodeLeft {
        /// The node.
        node_id: u32,
        /// Its operator.
        operator: Address,
    },
    /// `ClusterRegistry.ClusterCreated`.
    ClusterCreated {
        /// New id.
        cluster_id: u32,
        /// Threshold.
        threshold: u8,
        /// Members in fragment order.
        members: Vec<u32>,
    },
    /// `ClusterRegistry.ClusterMemberRetired`.
    ClusterMemberRetired {
        /// The cluster.
        cluster_id: u32,
        /// The retired node.
        node_id: u32,
        /// Members still active.
        active_members: u8,
    },
    /// `ClusterRegistry.ClusterActivated`.
    ClusterActivated {
        /// The cluster.
        cluster_id: u32,
    },
    /// `ClusterRegistry.ClusterDeactivated`.
    ClusterDeactivated {
        /// The cluster.
        cluster_id: u32,
    },
    /// `ClusterRegistry.BlackBoxRegistered`.
    BlackBoxRegistered {
        /// Its account.
        black_box: Address,
        /// Its signing key's address.
        signer: Address,
    },
    /// `ClusterRegistry.BlackBoxRemoved`.
    BlackBoxRemoved {
        /// Its account.
        black_box: Address,
    },
}

/// Decodes a log of one of the two contracts; `Ok(None)` for events not delivered.
pub(crate) fn decode(
    log: &Log,
    secrets_controller: Address,
    cluster_registry: Address,
) -> Result<Option<ChainEvent>> {
    let (Some(block_number), Some(block_hash), Some(log_index)) =
        (log.block_number, log.block_hash, log.log_index)
    else {
        return Err(ChainError::Decode {
            what: "log",
            detail: "log without block number, block hash or index (pending?)".into(),
        });
    };
    let emitter = log.address();
    let kind = if emitter == secrets_controller {
        let ev = SecretsControllerEvents::decode_log(&log.inner)
            .map_err(|e| ChainError::Decode {
                what: "SecretsController event",
                detail: e.to_string(),
            })?
            .data;
        controller_kind(ev)
    } else if emitter == cluster_registry {
        let ev = ClusterRegistryEvents::decode_log(&log.inner)
            .map_err(|e| ChainError::Decode {
                what: "ClusterRegistry event",
                detail: e.to_string(),
            })?
            .data;
        registry_kind(ev)
    } else {
        None
    };
    Ok(kind.map(|kind| ChainEvent { block_number, block_hash, log_index, kind }))
}

fn controller_kind(ev: SecretsControllerEvents) -> Option<ChainEventKind> {
    use SecretsControllerEvents as E;
    Some(match ev {
        E::SecretCreated(e) => ChainEventKind::SecretCreated {
            secret_id: e.secretId,
            owner: e.owner,
            cluster_id: e.clusterId,
            suite: e.suite,
            public_key_hash: e.publicKeyHash,
            public_key: e.publicKey,
        },
        E::DelegateAdded(e) => ChainEventKind::DelegateAdded {
            secret_id: e.secretId,
            delegate: e.delegate,
            expires_at: e.expiresAt,
        },
        E::DelegateRevoked(e) => {
            ChainEventKind::DelegateRevoked { secret_id: e.secretId, delegate: e.delegate }
        }
        E::SecretOwnershipTransferred(e) => ChainEventKind::SecretOwnershipTransferred {
            secret_id: e.secretId,
            previous_owner: e.previousOwner,
            new_owner: e.newOwner,
        },
        E::SecretShredded(e) => {
            ChainEventKind::SecretShredded { secret_id: e.secretId, owner: e.owner }
        }
        _ => return None,
    })
}

fn registry_kind(ev: ClusterRegistryEvents) -> Option<ChainEventKind> {
    use ClusterRegistryEvents as E;
    Some(match ev {
        E::NodeRegistered(e) => ChainEventKind::NodeRegistered {
            node_id: e.nodeId,
            operator: e.operator,
            public_key_hash: e.publicKeyHash,
        },
        E::NodeUpdated(e) => {
            ChainEventKind::NodeUpdated { node_id: e.nodeId, public_key_hash: e.publicKeyHash }
        }
        E::NodeRemoved(e) => {
            ChainEventKind::NodeRemoved { node_id: e.nodeId, operator: e.operator }
        }
        E::NodeLeft(e) => ChainEventKind::NodeLeft { node_id: e.nodeId, operator: e.operator },
        E::ClusterCreated(e) => ChainEventKind::ClusterCreated {
            cluster_id: e.clusterId,
            threshold: e.threshold,
            members: e.members,
        },
        E::ClusterMemberRetired(e) => ChainEventKind::ClusterMemberRetired {
            cluster_id: e.clusterId,
            node_id: e.nodeId,
            active_members: e.activeMembers,
        },
        E::ClusterActivated(e) => ChainEventKind::ClusterActivated { cluster_id: e.clusterId },
        E::ClusterDeactivated(e) => ChainEventKind::ClusterDeactivated { cluster_id: e.clusterId },
        E::BlackBoxRegistered(e) => {
            ChainEventKind::BlackBoxRegistered { black_box: e.blackBox, signer: e.signer }
        }
        E::BlackBoxRemoved(e) => ChainEventKind::BlackBoxRemoved { black_box: e.blackBox },
        _ => return None,
    })
}
