// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.30;

import {IClusterRegistry} from "./interfaces/IClusterRegistry.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";

/// @title ClusterRegistry
/// @notice Shard nodes, clusters and black boxes of a CIFER deployment, under a two-step
/// transferable governance account.
contract ClusterRegistry is IClusterRegistry, Ownable2Step {
    /// @inheritdoc IClusterRegistry
    uint8 public constant MAX_CLUSTER_SIZE = 32;

    /// @dev Length of an ML-KEM-768 encapsulation key (FIPS 203, k = 3).
    uint256 private constant _NODE_PUBLIC_KEY_LENGTH = 1184;

    uint32 private _nodeCount;
    uint32 private _clusterCount;
    mapping(uint32 nodeId => Node) private _nodes;
    mapping(uint32 clusterId => Cluster) private _clusters;
    mapping(address account => BlackBox) private _blackBoxes;

    /// @param governance The initial governance account.
    constructor(address governance) Ownable(governance) {}

    /// @inheritdoc IClusterRegistry
    function registerNode(
        address operator,
        string calldata endpoint,
        bytes calldata publicKey,
        bytes32 attestationHash
    ) external onlyOwner returns (uint32 nodeId) {
        if (operator == address(0)) {
            revert ClusterRegistryInvalidOperator(operator);
        }
        bytes32 publicKeyHash = _checkNodeFields(endpoint, publicKey, attestationHash);
        nodeId = ++_nodeCount;
        Node storage n = _nodes[nodeId];
        n.operator = operator;
        n.status = NodeStatus.Active;
        n.publicKeyHash = publicKeyHash;
        n.attestationHash = attestationHash;
        n.endpoint = endpoint;
        emit NodeRegistered(nodeId, operator, endpoint, publicKeyHash, attestationHash, publicKey);
    }

    /// @inheritdoc IClusterRegistry
    function updateNode(
        uint32 nodeId,
        string calldata endpoint,
        bytes calldata publicKey,
        bytes32 attestationHash
    ) external onlyOwner {
        Node storage n = _activeNode(nodeId);
        bytes32 publicKeyHash = _checkNodeFields(endpoint, publicKey, attestationHash);
        n.publicKeyHash = publicKeyHash;
        n.attestationHash = attestationHash;
        n.endpoint = endpoint;
        emit NodeUpdated(nodeId, endpoint, publicKeyHash, attestationHash, publicKey);
    }

    /// @inheritdoc IClusterRegistry
    function removeNode(uint32 nodeId) external onlyOwner {
        Node storage n = _activeNode(nodeId);
        _retire(nodeId, n);
        emit NodeRemoved(nodeId, n.operator);
    }

    /// @inheritdoc IClusterRegistry
    function leave(uint32 nodeId) external {
        Node storage n = _activeNode(nodeId);
        if (n.operator != msg.sender) {
            revert ClusterRegistryUnauthorizedOperator(nodeId, msg.sender);
        }
        _retire(nodeId, n);
        emit NodeLeft(nodeId, msg.sender);
    }

    /// @inheritdoc IClusterRegistry
    function createCluster(uint32[] calldata nodeIds, uint8 threshold)
        external
        onlyOwner
        returns (uint32 clusterId)
    {
        uint256 size = nodeIds.length;
        if (size == 0 || size > MAX_CLUSTER_SIZE) revert ClusterRegistryInvalidClusterSize(size);
        if (threshold == 0 || threshold > size) {
            revert ClusterRegistryInvalidThreshold(threshold, size);
        }
        clusterId = ++_clusterCount;
        for (uint256 i = 0; i < size; ++i) {
            uint32 nodeId = nodeIds[i];
            Node storage n = _activeNode(nodeId);
            // A node already placed (including earlier in this list) is rejected, which also
            // rules out duplicates.
            if (n.clusterId != 0) revert ClusterRegistryNodeAlreadyInCluster(nodeId, n.clusterId);
            n.clusterId = clusterId;
        }
        Cluster storage c = _clusters[clusterId];
        c.status = ClusterStatus.Active;
        c.threshold = threshold;
        // casting to 'uint8' is safe because size <= MAX_CLUSTER_SIZE < 256
        // forge-lint: disable-next-line(unsafe-typecast)
        uint8 size8 = uint8(size);
        c.size = size8;
        c.activeMembers = size8;
        c.members = nodeIds;
        emit ClusterCreated(clusterId, threshold, nodeIds);
    }

    /// @inheritdoc IClusterRegistry
    function activateCluster(uint32 clusterId) external onlyOwner {
        Cluster storage c = _existingCluster(clusterId);
        if (c.status == ClusterStatus.Active) {
            revert ClusterRegistryClusterAlreadyActive(clusterId);
        }
        if (c.activeMembers < c.threshold) {
            revert ClusterRegistryInsufficientActiveMembers(clusterId, c.activeMembers, c.threshold);
        }
        c.status = ClusterStatus.Active;
        emit ClusterActivated(clusterId);
    }

    /// @inheritdoc IClusterRegistry
    function deactivateCluster(uint32 clusterId) external onlyOwner {
        Cluster storage c = _existingCluster(clusterId);
        if (c.status != ClusterStatus.Active) {
            revert ClusterRegistryClusterAlreadyInactive(clusterId);
        }
        c.status = ClusterStatus.Inactive;
        emit ClusterDeactivated(clusterId);
    }

    /// @inheritdoc IClusterRegistry
    function registerBlackBox(address account, address signer, bytes32 attestationHash)
        external
        onlyOwner
    {
        if (account == address(0)) revert ClusterRegistryInvalidBlackBox(account);
        if (signer == address(0)) revert ClusterRegistryInvalidBlackBox(signer);
        if (attestationHash == bytes32(0)) revert ClusterRegistryInvalidAttestation();
        BlackBox storage b = _blackBoxes[account];
        if (b.registered) revert ClusterRegistryBlackBoxAlreadyRegistered(account);
        b.registered = true;
        b.signer = signer;
        b.attestationHash = attestationHash;
        emit BlackBoxRegistered(account, signer, attestationHash);
    }

    /// @inheritdoc IClusterRegistry
    function removeBlackBox(address account) external onlyOwner {
        if (!_blackBoxes[account].registered) revert ClusterRegistryUnknownBlackBox(account);
        delete _blackBoxes[account];
        emit BlackBoxRemoved(account);
    }

    /// @notice Disabled: governance can be transferred but never renounced.
    function renounceOwnership() public view override onlyOwner {
        revert ClusterRegistryRenounceOwnershipDisabled();
    }

    /// @inheritdoc IClusterRegistry
    function isClusterActive(uint32 clusterId) external view returns (bool) {
        Cluster storage c = _clusters[clusterId];
        return c.status == ClusterStatus.Active && c.activeMembers >= c.threshold;
    }

    /// @inheritdoc IClusterRegistry
    function cluster(uint32 clusterId) external view returns (Cluster memory) {
        return _existingCluster(clusterId);
    }

    /// @inheritdoc IClusterRegistry
    function clusterMembers(uint32 clusterId) external view returns (uint32[] memory) {
        return _existingCluster(clusterId).members;
    }

    /// @inheritdoc IClusterRegistry
    function clusterThreshold(uint32 clusterId) external view returns (uint8) {
        return _existingCluster(clusterId).threshold;
    }

    /// @inheritdoc IClusterRegistry
    function node(uint32 nodeId) external view returns (Node memory) {
        return _nodes[nodeId];
    }

    /// @inheritdoc IClusterRegistry
    function isBlackBox(address account) external view returns (bool) {
        return _blackBoxes[account].registered;
    }

    /// @inheritdoc IClusterRegistry
    function blackBox(address account) external view returns (BlackBox memory) {
        return _blackBoxes[account];
    }

    /// @inheritdoc IClusterRegistry
    function nodeCount() external view returns (uint32) {
        return _nodeCount;
    }

    /// @inheritdoc IClusterRegistry
    function clusterCount() external view returns (uint32) {
        return _clusterCount;
    }

    /// @dev Retires an active node and, if it is a member, takes it out of its cluster's
    /// active count and deactivates the cluster.
    function _retire(uint32 nodeId, Node storage n) private {
        n.status = NodeStatus.Retired;
        uint32 clusterId = n.clusterId;
        if (clusterId == 0) return;
        Cluster storage c = _clusters[clusterId];
        // Cannot underflow: every active member of a cluster is counted in activeMembers, and
        // a node is retired only once.
        unchecked {
            --c.activeMembers;
        }
        emit ClusterMemberRetired(clusterId, nodeId, c.activeMembers);
        if (c.status == ClusterStatus.Active) {
            c.status = ClusterStatus.Inactive;
            emit ClusterDeactivated(clusterId);
        }
    }

    /// @dev The storage record of an active node; reverts otherwise.
    function _activeNode(uint32 nodeId) private view returns (Node storage n) {
        n = _nodes[nodeId];
        if (n.status != NodeStatus.Active) revert ClusterRegistryNodeNotActive(nodeId);
    }

    /// @dev The storage record of an existing cluster; reverts otherwise.
    function _existingCluster(uint32 clusterId) private view returns (Cluster storage c) {
        c = _clusters[clusterId];
        if (c.status == ClusterStatus.None) revert ClusterRegistryUnknownCluster(clusterId);
    }

    /// @dev Validates a node's endpoint, key and attestation; returns the key's hash.
    function _checkNodeFields(
        string calldata endpoint,
        bytes calldata publicKey,
        bytes32 attestationHash
    ) private pure returns (bytes32) {
        if (bytes(endpoint).length == 0) {
            revert ClusterRegistryInvalidEndpoint();
        }
        if (publicKey.length != _NODE_PUBLIC_KEY_LENGTH) {
            revert ClusterRegistryInvalidNodePublicKey(publicKey.length);
        }
        if (attestationHash == bytes32(0)) revert ClusterRegistryInvalidAttestation();
        return keccak256(publicKey);
    }
}
