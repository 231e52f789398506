// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.30;

/// @title IClusterRegistry
/// @notice Registry of the shard nodes, the clusters they form and the black boxes
/// (orchestrators) of one CIFER deployment. Shard nodes and black boxes read it to decide
/// whom they talk to; the SecretsController reads it to decide whether a secret's cluster
/// may serve decryptions.
/// @dev Only the governance account (two-step transferable) changes the registry, except
/// that a node's operator may take its own node out of service. A cluster records its size
/// and threshold; it is active only while governance has not deactivated it and at least
/// `threshold` of its members are active. A member leaving or being removed deactivates
/// the cluster (the seed design has no resharing yet), so services must react to
/// {ClusterDeactivated}. Ids of nodes and clusters start at 1 and are never reused; 0 means
/// "none".
interface IClusterRegistry {
    /// @notice Lifecycle of a shard node.
    enum NodeStatus {
        // No node with this id was ever registered.
        None,
        // Registered and in service.
        Active,
        // Removed by governance or left by its operator; final.
        Retired
    }

    /// @notice Lifecycle of a cluster.
    enum ClusterStatus {
        // No cluster with this id was ever created.
        None,
        // Serving, provided enough members are active (see {isClusterActive}).
        Active,
        // Deactivated by governance or by the loss of a member.
        Inactive
    }

    /// @notice A shard node as recorded on chain.
    /// @param operator Account that runs the node and may retire it with {leave}.
    /// @param status Lifecycle state.
    /// @param clusterId Cluster the node belongs to, 0 if none. A node joins at most one cluster.
    /// @param publicKeyHash keccak256 of the node's ML-KEM-768 encapsulation key (1,184 bytes),
    /// used to encrypt fragments to the node; the key itself is in {NodeRegistered} /
    /// {NodeUpdated} and must be checked against this hash before use.
    /// @param attestationHash Measurement of the node's attested software.
    /// @param endpoint Where the node is reached (for example an https URL).
    struct Node {
        address operator;
        NodeStatus status;
        uint32 clusterId;
        bytes32 publicKeyHash;
        bytes32 attestationHash;
        string endpoint;
    }

    /// @notice A cluster of shard nodes holding fragments of secrets.
    /// @param status Lifecycle state; see {isClusterActive} for the effective answer.
    /// @param threshold Number of fragments that rebuild a secret (t).
    /// @param size Number of members (n).
    /// @param activeMembers Members that are still active.
    /// @param members Node ids of the members, in creation order (fragment index i + 1).
    struct Cluster {
        ClusterStatus status;
        uint8 threshold;
        uint8 size;
        uint8 activeMembers;
        uint32[] members;
    }

    /// @notice A black box (orchestrator) as recorded on chain.
    /// @param registered Whether the account is currently registered.
    /// @param signer Key whose ECDSA signatures identify the black box off chain (it signs
    /// the per-request keys that shard nodes encrypt fragments to).
    /// @param attestationHash Measurement of the black box's attested software.
    struct BlackBox {
        bool registered;
        address signer;
        bytes32 attestationHash;
    }

    /// @notice Thrown when a node operator is the zero address.
    /// @param operator The rejected operator.
    error ClusterRegistryInvalidOperator(address operator);

    /// @notice Thrown when a node endpoint is empty.
    error ClusterRegistryInvalidEndpoint();

    /// @notice Thrown when a node public key is not a 1,184-byte ML-KEM-768 encapsulation key.
    /// @param length Length of the rejected key, in bytes.
    error ClusterRegistryInvalidNodePublicKey(uint256 length);

    /// @notice Thrown when an attestation measurement is zero.
    error ClusterRegistryInvalidAttestation();

    /// @notice Thrown when a node id does not name an active node.
    /// @param nodeId The node id.
    error ClusterRegistryNodeNotActive(uint32 nodeId);

    /// @notice Thrown when a node that already belongs to a cluster is put in another one.
    /// @param nodeId The node id.
    /// @param clusterId The cluster it belongs to.
    error ClusterRegistryNodeAlreadyInCluster(uint32 nodeId, uint32 clusterId);

    /// @notice Thrown when a cluster would have no members or more than the maximum.
    /// @param size The rejected number of members.
    error ClusterRegistryInvalidClusterSize(uint256 size);

    /// @notice Thrown when a threshold is 0 or larger than the cluster size.
    /// @param threshold The rejected threshold.
    /// @param size The cluster size.
    error ClusterRegistryInvalidThreshold(uint256 threshold, uint256 size);

    /// @notice Thrown when a cluster id names no cluster.
    /// @param clusterId The cluster id.
    error ClusterRegistryUnknownCluster(uint32 clusterId);

    /// @notice Thrown when activating a cluster that is already active.
    /// @param clusterId The cluster id.
    error ClusterRegistryClusterAlreadyActive(uint32 clusterId);

    /// @notice Thrown when deactivating a cluster that is already inactive.
    /// @param clusterId The cluster id.
    error ClusterRegistryClusterAlreadyInactive(uint32 clusterId);

    /// @notice Thrown when activating a cluster with fewer active members than its threshold.
    /// @param clusterId The cluster id.
    /// @param activeMembers Members still active.
    /// @param threshold The cluster's threshold.
    error ClusterRegistryInsufficientActiveMembers(
        uint32 clusterId, uint8 activeMembers, uint8 threshold
    );

    /// @notice Thrown when someone other than a node's operator calls {leave}.
    /// @param nodeId The node id.
    /// @param account The caller.
    error ClusterRegistryUnauthorizedOperator(uint32 nodeId, address account);

    /// @notice Thrown when a black box address or signer is the zero address.
    /// @param account The rejected account.
    error ClusterRegistryInvalidBlackBox(address account);

    /// @notice Thrown when registering a black box that is already registered.
    /// @param blackBox The black box address.
    error ClusterRegistryBlackBoxAlreadyRegistered(address blackBox);

    /// @notice Thrown when removing an account that is not a registered black box.
    /// @param blackBox The account.
    error ClusterRegistryUnknownBlackBox(address blackBox);

    /// @notice Thrown by `renounceOwnership`: a registry without governance could never
    /// remove a compromised node, so governance can only be transferred.
    error ClusterRegistryRenounceOwnershipDisabled();

    /// @notice Emitted when governance registers a shard node.
    /// @param nodeId The new node id.
    /// @param operator The node's operator.
    /// @param endpoint Where the node is reached.
    /// @param publicKeyHash keccak256 of `publicKey`.
    /// @param attestationHash Measurement of the node's software.
    /// @param publicKey The node's ML-KEM-768 encapsulation key (1,184 bytes).
    event NodeRegistered(
        uint32 indexed nodeId,
        address indexed operator,
        string endpoint,
        bytes32 publicKeyHash,
        bytes32 attestationHash,
        bytes publicKey
    );

    /// @notice Emitted when governance changes a node's endpoint, key or attestation.
    /// @param nodeId The node id.
    /// @param endpoint The new endpoint.
    /// @param publicKeyHash keccak256 of `publicKey`.
    /// @param attestationHash The new measurement.
    /// @param publicKey The node's new ML-KEM-768 encapsulation key (1,184 bytes).
    event NodeUpdated(
        uint32 indexed nodeId,
        string endpoint,
        bytes32 publicKeyHash,
        bytes32 attestationHash,
        bytes publicKey
    );

    /// @notice Emitted when governance removes a node.
    /// @param nodeId The node id.
    /// @param operator The node's operator.
    event NodeRemoved(uint32 indexed nodeId, address indexed operator);

    /// @notice Emitted when a node's operator takes the node out of service.
    /// @param nodeId The node id.
    /// @param operator The node's operator.
    event NodeLeft(uint32 indexed nodeId, address indexed operator);

    /// @notice Emitted when governance creates a cluster (created active).
    /// @param clusterId The new cluster id.
    /// @param threshold Fragments needed to rebuild a secret.
    /// @param members Node ids of the members, in order.
    event ClusterCreated(uint32 indexed clusterId, uint8 threshold, uint32[] members);

    /// @notice Emitted when a member of a cluster is removed or leaves.
    /// @param clusterId The cluster id.
    /// @param nodeId The retired member.
    /// @param activeMembers Members of the cluster still active.
    event ClusterMemberRetired(
        uint32 indexed clusterId, uint32 indexed nodeId, uint8 activeMembers
    );

    /// @notice Emitted when governance (re)activates a cluster.
    /// @param clusterId The cluster id.
    event ClusterActivated(uint32 indexed clusterId);

    /// @notice Emitted when a cluster stops serving, by governance or by losing a member.
    /// @param clusterId The cluster id.
    event ClusterDeactivated(uint32 indexed clusterId);

    /// @notice Emitted when governance registers a black box.
    /// @param blackBox The black box's on-chain account.
    /// @param signer The key that identifies it off chain.
    /// @param attestationHash Measurement of its software.
    event BlackBoxRegistered(
        address indexed blackBox, address indexed signer, bytes32 attestationHash
    );

    /// @notice Emitted when governance removes a black box.
    /// @param blackBox The black box's on-chain account.
    event BlackBoxRemoved(address indexed blackBox);

    /// @notice Registers a shard node. Governance only.
    /// @param operator Account that runs the node; non-zero.
    /// @param endpoint Where the node is reached; non-empty.
    /// @param publicKey The node's ML-KEM-768 encapsulation key, exactly 1,184 bytes. Only its
    /// hash is stored; the key is emitted in {NodeRegistered}.
    /// @param attestationHash Measurement of the node's software; non-zero.
    /// @return nodeId The new node id (from 1).
    function registerNode(
        address operator,
        string calldata endpoint,
        bytes calldata publicKey,
        bytes32 attestationHash
    ) external returns (uint32 nodeId);

    /// @notice Replaces an active node's endpoint, public key and attestation. Governance only.
    /// @param nodeId The node id.
    /// @param endpoint The new endpoint; non-empty.
    /// @param publicKey The new ML-KEM-768 encapsulation key, exactly 1,184 bytes.
    /// @param attestationHash The new measurement; non-zero.
    function updateNode(
        uint32 nodeId,
        string calldata endpoint,
        bytes calldata publicKey,
        bytes32 attestationHash
    ) external;

    /// @notice Retires a node for good. Governance only. If the node belongs to a cluster, the
    /// cluster loses an active member and is deactivated.
    /// @param nodeId The node id; must be active.
    function removeNode(uint32 nodeId) external;

    /// @notice Lets a node's operator retire the node for good, with the same effect on its
    /// cluster as {removeNode}.
    /// @param nodeId The node id; must be active and operated by the caller.
    function leave(uint32 nodeId) external;

    /// @notice Creates an active cluster from active nodes that belong to no cluster.
    /// Governance only.
    /// @param nodeIds The members, in fragment order; 1 to {MAX_CLUSTER_SIZE} distinct nodes.
    /// @param threshold Fragments needed to rebuild a secret; 1 to `nodeIds.length`.
    /// @return clusterId The new cluster id (from 1).
    function createCluster(uint32[] calldata nodeIds, uint8 threshold)
        external
        returns (uint32 clusterId);

    /// @notice Reactivates an inactive cluster. Governance only. Reverts unless at least
    /// `threshold` members are active.
    /// @param clusterId The cluster id.
    function activateCluster(uint32 clusterId) external;

    /// @notice Deactivates an active cluster, for example while a member is investigated.
    /// Governance only.
    /// @param clusterId The cluster id.
    function deactivateCluster(uint32 clusterId) external;

    /// @notice Registers a black box. Governance only.
    /// @param blackBox The account it sends transactions from (for example to anchor audit
    /// roots); non-zero, not already registered.
    /// @param signer The key that identifies it off chain; non-zero.
    /// @param attestationHash Measurement of its software; non-zero.
    function registerBlackBox(address blackBox, address signer, bytes32 attestationHash) external;

    /// @notice Removes a registered black box. Governance only.
    /// @param blackBox The black box's account.
    function removeBlackBox(address blackBox) external;

    /// @notice Whether a cluster may serve: created, not deactivated, and with at least
    /// `threshold` active members. False for unknown ids.
    /// @param clusterId The cluster id.
    /// @return active True if the cluster is active.
    function isClusterActive(uint32 clusterId) external view returns (bool active);

    /// @notice A cluster's record. Reverts for unknown ids.
    /// @param clusterId The cluster id.
    /// @return info The cluster.
    function cluster(uint32 clusterId) external view returns (Cluster memory info);

    /// @notice The node ids of a cluster's members, in fragment order. Reverts for unknown ids.
    /// @param clusterId The cluster id.
    /// @return members The members.
    function clusterMembers(uint32 clusterId) external view returns (uint32[] memory members);

    /// @notice A cluster's threshold. Reverts for unknown ids.
    /// @param clusterId The cluster id.
    /// @return threshold Fragments needed to rebuild a secret.
    function clusterThreshold(uint32 clusterId) external view returns (uint8 threshold);

    /// @notice A node's record. Status {NodeStatus.None} (and zero fields) for unknown ids.
    /// @param nodeId The node id.
    /// @return info The node.
    function node(uint32 nodeId) external view returns (Node memory info);

    /// @notice Whether an account is a registered black box.
    /// @param account The account.
    /// @return registered True if registered.
    function isBlackBox(address account) external view returns (bool registered);

    /// @notice A black box's record; `registered` is false for other accounts.
    /// @param account The account.
    /// @return info The black box.
    function blackBox(address account) external view returns (BlackBox memory info);

    /// @notice Number of nodes ever registered (the last node id).
    /// @return count The number of nodes.
    function nodeCount() external view returns (uint32 count);

    /// @notice Number of clusters ever created (the last cluster id).
    /// @return count The number of clusters.
    function clusterCount() external view returns (uint32 count);

    /// @notice Largest number of members in a cluster.
    /// @return size The maximum cluster size.
    function MAX_CLUSTER_SIZE() external view returns (uint8 size);
}
