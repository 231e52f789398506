// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.30;

import {IClusterRegistry} from "./interfaces/IClusterRegistry.sol";
import {ISecretsController} from "./interfaces/ISecretsController.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

/// @title SecretsController
/// @notice Owners, delegates and lifecycle of CIFER secrets on one chain. The admin (a
/// two-step transferable owner, distinct from the owners of secrets) only sets and collects
/// the creation fee; it has no power over any secret.
contract SecretsController is ISecretsController, Ownable2Step, EIP712 {
    /// @dev Storage of one delegation. Valid only while `epoch` equals the secret's
    /// `delegateEpoch`, so that an ownership transfer voids every delegation at once.
    struct Delegation {
        uint64 expiresAt;
        uint48 epoch;
        bool granted;
    }

    uint8 private constant _SUITE_MLKEM768 = 0x01;
    uint8 private constant _SUITE_K256_TECIES = 0x02;
    uint8 private constant _SUITE_HYBRID = 0x03;
    /// @dev ML-KEM-768 encapsulation key (FIPS 203, k = 3).
    uint256 private constant _MLKEM768_EK_LENGTH = 1184;
    /// @dev SEC1 compressed secp256k1 point.
    uint256 private constant _K256_POINT_LENGTH = 33;
    bytes32 private constant _DECRYPT_REQUEST_TYPEHASH = keccak256(
        "DecryptRequest(uint256 secretId,address requester,uint64 blockNumber,bytes32 envelopeHash,bytes32 responseKeyHash,bytes32 nonce)"
    );

    IClusterRegistry private immutable _clusterRegistry;

    uint256 private _secretCount;
    uint256 private _creationFee;
    mapping(uint256 secretId => Secret) private _secrets;
    mapping(uint256 secretId => mapping(address delegate => Delegation)) private _delegations;
    mapping(address blackBox => AuditAnchor) private _auditAnchors;

    /// @param admin The initial admin (fee settings).
    /// @param registry The ClusterRegistry of clusters and black boxes.
    constructor(address admin, IClusterRegistry registry) Ownable(admin) EIP712("CIFER", "1") {
        if (address(registry) == address(0)) revert SecretsControllerInvalidClusterRegistry();
        _clusterRegistry = registry;
    }

    /// @inheritdoc ISecretsController
    function createSecret(uint32 clusterId, uint8 suite, bytes calldata publicKey)
        external
        payable
        returns (uint256 secretId)
    {
        uint256 fee = _creationFee;
        if (msg.value != fee) revert SecretsControllerIncorrectFee(fee, msg.value);
        _checkPublicKey(suite, publicKey);
        if (!_clusterRegistry.isClusterActive(clusterId)) {
            revert SecretsControllerClusterNotActive(clusterId);
        }
        bytes32 publicKeyHash = keccak256(publicKey);
        secretId = ++_secretCount;
        Secret storage s = _secrets[secretId];
        s.owner = msg.sender;
        s.clusterId = clusterId;
        s.state = SecretState.Active;
        s.suite = suite;
        s.publicKeyHash = publicKeyHash;
        emit SecretCreated(secretId, msg.sender, clusterId, suite, publicKeyHash, publicKey);
    }

    /// @inheritdoc ISecretsController
    function transferSecretOwnership(uint256 secretId, address newOwner) external {
        Secret storage s = _ownedActiveSecret(secretId);
        s.pendingOwner = newOwner;
        emit SecretOwnershipTransferStarted(secretId, msg.sender, newOwner);
    }

    /// @inheritdoc ISecretsController
    function acceptSecretOwnership(uint256 secretId) external {
        Secret storage s = _activeSecret(secretId);
        // pendingOwner is never the caller when it is zero: msg.sender is never zero.
        if (s.pendingOwner != msg.sender) {
            revert SecretsControllerNotPendingOwner(secretId, msg.sender);
        }
        address previousOwner = s.owner;
        s.owner = msg.sender;
        ++s.delegateEpoch;
        delete s.pendingOwner;
        emit SecretOwnershipTransferred(secretId, previousOwner, msg.sender);
    }

    /// @inheritdoc ISecretsController
    function addDelegate(uint256 secretId, address delegate, uint64 expiresAt) external {
        Secret storage s = _ownedActiveSecret(secretId);
        if (delegate == address(0)) revert SecretsControllerInvalidDelegate(delegate);
        // Expiry is in unix seconds by design (see the interface); a proposer's few seconds of
        // leeway on the timestamp do not matter at that scale.
        // forge-lint: disable-next-line(block-timestamp)
        if (expiresAt != 0 && expiresAt <= block.timestamp) {
            revert SecretsControllerInvalidExpiry(expiresAt);
        }
        _delegations[secretId][delegate] =
            Delegation({expiresAt: expiresAt, epoch: s.delegateEpoch, granted: true});
        emit DelegateAdded(secretId, delegate, expiresAt);
    }

    /// @inheritdoc ISecretsController
    function revokeDelegate(uint256 secretId, address delegate) external {
        Secret storage s = _ownedActiveSecret(secretId);
        Delegation storage d = _delegations[secretId][delegate];
        if (!d.granted || d.epoch != s.delegateEpoch) {
            revert SecretsControllerNotDelegate(secretId, delegate);
        }
        delete _delegations[secretId][delegate];
        emit DelegateRevoked(secretId, delegate);
    }

    /// @inheritdoc ISecretsController
    function shred(uint256 secretId) external {
        Secret storage s = _ownedActiveSecret(secretId);
        s.state = SecretState.Shredded;
        if (s.pendingOwner != address(0)) delete s.pendingOwner;
        emit SecretShredded(secretId, msg.sender);
    }

    /// @inheritdoc ISecretsController
    function anchorAuditRoot(bytes32 root, uint64 count) external {
        if (!_clusterRegistry.isBlackBox(msg.sender)) {
            revert SecretsControllerNotBlackBox(msg.sender);
        }
        if (root == bytes32(0)) revert SecretsControllerInvalidAuditRoot();
        AuditAnchor storage a = _auditAnchors[msg.sender];
        if (count <= a.count) revert SecretsControllerStaleAuditCount(a.count, count);
        a.root = root;
        a.count = count;
        // Block numbers fit in 64 bits on every EVM chain.
        a.blockNumber = uint64(block.number);
        emit AuditRootAnchored(msg.sender, count, root);
    }

    /// @inheritdoc ISecretsController
    function setCreationFee(uint256 fee) external onlyOwner {
        uint256 previousFee = _creationFee;
        _creationFee = fee;
        emit CreationFeeUpdated(previousFee, fee);
    }

    /// @inheritdoc ISecretsController
    function withdrawFees(address payable recipient) external onlyOwner {
        if (recipient == address(0)) revert SecretsControllerInvalidRecipient();
        uint256 amount = address(this).balance;
        emit FeesWithdrawn(recipient, amount);
        (bool success,) = recipient.call{value: amount}("");
        if (!success) revert SecretsControllerWithdrawalFailed(recipient, amount);
    }

    /// @notice Disabled: the admin role can be transferred but never renounced.
    function renounceOwnership() public view override onlyOwner {
        revert SecretsControllerRenounceOwnershipDisabled();
    }

    /// @inheritdoc ISecretsController
    function isAuthorized(uint256 secretId, address account) external view returns (bool) {
        if (account == address(0)) return false;
        Secret storage s = _secrets[secretId];
        if (s.state != SecretState.Active) return false;
        if (account != s.owner) {
            Delegation memory d = _delegations[secretId][account];
            if (!d.granted || d.epoch != s.delegateEpoch) return false;
            // forge-lint: disable-next-line(block-timestamp)
            if (d.expiresAt != 0 && block.timestamp >= d.expiresAt) return false;
        }
        return _clusterRegistry.isClusterActive(s.clusterId);
    }

    /// @inheritdoc ISecretsController
    function secret(uint256 secretId) external view returns (Secret memory) {
        return _secrets[secretId];
    }

    /// @inheritdoc ISecretsController
    function delegation(uint256 secretId, address account)
        external
        view
        returns (bool isDelegate, uint64 expiresAt)
    {
        Delegation memory d = _delegations[secretId][account];
        if (d.granted && d.epoch == _secrets[secretId].delegateEpoch) {
            return (true, d.expiresAt);
        }
        return (false, 0);
    }

    /// @inheritdoc ISecretsController
    function secretCount() external view returns (uint256) {
        return _secretCount;
    }

    /// @inheritdoc ISecretsController
    function creationFee() external view returns (uint256) {
        return _creationFee;
    }

    /// @inheritdoc ISecretsController
    function clusterRegistry() external view returns (IClusterRegistry) {
        return _clusterRegistry;
    }

    /// @inheritdoc ISecretsController
    function auditAnchor(address blackBox) external view returns (AuditAnchor memory) {
        return _auditAnchors[blackBox];
    }

    /// @inheritdoc ISecretsController
    function hashDecryptRequest(DecryptRequest calldata request) external view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    _DECRYPT_REQUEST_TYPEHASH,
                    request.secretId,
                    request.requester,
                    request.blockNumber,
                    request.envelopeHash,
                    request.responseKeyHash,
                    request.nonce
                )
            )
        );
    }

    /// @dev The storage record of an active secret; reverts otherwise.
    function _activeSecret(uint256 secretId) private view returns (Secret storage s) {
        s = _secrets[secretId];
        if (s.state != SecretState.Active) revert SecretsControllerSecretNotActive(secretId);
    }

    /// @dev The storage record of an active secret owned by the caller; reverts otherwise.
    function _ownedActiveSecret(uint256 secretId) private view returns (Secret storage s) {
        s = _activeSecret(secretId);
        if (s.owner != msg.sender) {
            revert SecretsControllerUnauthorizedAccount(secretId, msg.sender);
        }
    }

    /// @dev Reverts unless `publicKey` has the encoding of `suite` (see {createSecret}).
    function _checkPublicKey(uint8 suite, bytes calldata publicKey) private pure {
        uint256 length = publicKey.length;
        if (suite == _SUITE_MLKEM768) {
            if (length == _MLKEM768_EK_LENGTH) return;
        } else if (suite == _SUITE_K256_TECIES) {
            if (length == _K256_POINT_LENGTH && _isCompressedPointPrefix(publicKey[0])) return;
        } else if (suite == _SUITE_HYBRID) {
            if (
                length == _MLKEM768_EK_LENGTH + _K256_POINT_LENGTH
                    && _isCompressedPointPrefix(publicKey[_MLKEM768_EK_LENGTH])
            ) return;
        } else {
            revert SecretsControllerUnsupportedSuite(suite);
        }
        revert SecretsControllerInvalidPublicKey(suite, length);
    }

    /// @dev Whether `prefix` starts a SEC1 compressed point (0x02 or 0x03).
    function _isCompressedPointPrefix(bytes1 prefix) private pure returns (bool) {
        return prefix == 0x02 || prefix == 0x03;
    }
}
