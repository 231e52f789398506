// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.30;

import {IClusterRegistry} from "./IClusterRegistry.sol";

/// @title ISecretsController
/// @notice Who may decrypt what, on one EVM chain: the owner, delegates and lifecycle of every
/// CIFER secret, the commitment to its public key, and the anchors of the black boxes'
/// decryption logs. Shard nodes and black boxes call {isAuthorized} before serving a request.
/// @dev Secrets are numbered from 1 and ids are never reused. A secret's public key is
/// content-addressed (PROTOCOL.md §3): only `keccak256(publicKey)` is stored, and the key
/// itself is emitted in {SecretCreated} so that anyone can fetch it from the logs and check
/// it against the hash. Delegation expiry is a unix timestamp (seconds) compared with
/// `block.timestamp`, so that "valid for 30 days" means the same on every chain whatever its
/// block time. Ownership moves in two steps, and delegates do not survive it: the new owner
/// starts with none. Nothing assumes that an account is an EOA.
interface ISecretsController {
    /// @notice Lifecycle of a secret.
    enum SecretState {
        // No secret with this id was ever created.
        None,
        // Created and usable.
        Active,
        // Destroyed by its owner; final. Nodes delete its fragments.
        Shredded
    }

    /// @notice A secret as recorded on chain.
    /// @param owner The account that controls the secret.
    /// @param clusterId The ClusterRegistry cluster that holds the secret's fragments.
    /// @param state Lifecycle state.
    /// @param suite PROTOCOL.md suite byte of the secret's key: 0x01 ML-KEM-768, 0x02
    /// K256-TECIES, 0x03 HYBRID.
    /// @param delegateEpoch Incremented by every ownership transfer; delegations granted in an
    /// earlier epoch are void.
    /// @param publicKeyHash keccak256 of the secret's public key in the suite's encoding (see
    /// {createSecret}).
    /// @param pendingOwner The account that may accept ownership, or zero.
    struct Secret {
        address owner;
        uint32 clusterId;
        SecretState state;
        uint8 suite;
        uint48 delegateEpoch;
        bytes32 publicKeyHash;
        address pendingOwner;
    }

    /// @notice The latest decryption-log root anchored by a black box.
    /// @param root Merkle or hash-chain root over the black box's log.
    /// @param count Number of log entries the root covers; strictly increasing per black box.
    /// @param blockNumber Block in which the root was anchored.
    struct AuditAnchor {
        bytes32 root;
        uint64 count;
        uint64 blockNumber;
    }

    /// @notice The EIP-712 decryption request of PROTOCOL.md §4.2.
    /// @param secretId The secret to decrypt with.
    /// @param requester The account that signs (owner or delegate; may be a contract).
    /// @param blockNumber The block the request is made at (freshness window).
    /// @param envelopeHash keccak256(header || encapsulation) of the envelope to open.
    /// @param responseKeyHash keccak256 of the requester's ephemeral ML-KEM-768 key.
    /// @param nonce 32 random bytes, accepted once per requester.
    struct DecryptRequest {
        uint256 secretId;
        address requester;
        uint64 blockNumber;
        bytes32 envelopeHash;
        bytes32 responseKeyHash;
        bytes32 nonce;
    }

    /// @notice Thrown when the ClusterRegistry given to the constructor is the zero address.
    error SecretsControllerInvalidClusterRegistry();

    /// @notice Thrown when creating a secret with a suite byte other than 0x01, 0x02, 0x03.
    /// @param suite The rejected suite byte.
    error SecretsControllerUnsupportedSuite(uint8 suite);

    /// @notice Thrown when a public key does not have the suite's encoding.
    /// @param suite The suite byte.
    /// @param length Length of the rejected key, in bytes.
    error SecretsControllerInvalidPublicKey(uint8 suite, uint256 length);

    /// @notice Thrown when creating a secret on a cluster that is not active.
    /// @param clusterId The cluster id.
    error SecretsControllerClusterNotActive(uint32 clusterId);

    /// @notice Thrown when the value sent with {createSecret} is not the creation fee.
    /// @param expected The creation fee, in wei.
    /// @param provided The value sent, in wei.
    error SecretsControllerIncorrectFee(uint256 expected, uint256 provided);

    /// @notice Thrown when a secret does not exist or has been shredded.
    /// @param secretId The secret id.
    error SecretsControllerSecretNotActive(uint256 secretId);

    /// @notice Thrown when an account other than the secret's owner tries to manage it.
    /// @param secretId The secret id.
    /// @param account The caller.
    error SecretsControllerUnauthorizedAccount(uint256 secretId, address account);

    /// @notice Thrown when an account other than the pending owner accepts ownership.
    /// @param secretId The secret id.
    /// @param account The caller.
    error SecretsControllerNotPendingOwner(uint256 secretId, address account);

    /// @notice Thrown when a delegate is the zero address.
    /// @param delegate The rejected delegate.
    error SecretsControllerInvalidDelegate(address delegate);

    /// @notice Thrown when a delegation expiry is neither 0 nor in the future.
    /// @param expiresAt The rejected expiry (unix seconds).
    error SecretsControllerInvalidExpiry(uint64 expiresAt);

    /// @notice Thrown when revoking an account that is not a delegate of the secret.
    /// @param secretId The secret id.
    /// @param delegate The account.
    error SecretsControllerNotDelegate(uint256 secretId, address delegate);

    /// @notice Thrown when an account that is not a registered black box anchors an audit root.
    /// @param account The caller.
    error SecretsControllerNotBlackBox(address account);

    /// @notice Thrown when an audit root is zero.
    error SecretsControllerInvalidAuditRoot();

    /// @notice Thrown when an audit count does not exceed the black box's previous one.
    /// @param previous The count of the previous anchor.
    /// @param provided The rejected count.
    error SecretsControllerStaleAuditCount(uint64 previous, uint64 provided);

    /// @notice Thrown when fees are withdrawn to the zero address.
    error SecretsControllerInvalidRecipient();

    /// @notice Thrown when the fee transfer to the recipient fails.
    /// @param recipient The recipient.
    /// @param amount The amount, in wei.
    error SecretsControllerWithdrawalFailed(address recipient, uint256 amount);

    /// @notice Thrown by `renounceOwnership`: the admin role can only be transferred.
    error SecretsControllerRenounceOwnershipDisabled();

    /// @notice Emitted when a secret is created.
    /// @param secretId The new secret id.
    /// @param owner The creator, now its owner.
    /// @param clusterId The cluster that holds its fragments.
    /// @param suite The suite byte of its key.
    /// @param publicKeyHash keccak256 of `publicKey`.
    /// @param publicKey The full public key in the suite's encoding (for suite 0x01 the
    /// 1,184-byte ML-KEM-768 encapsulation key).
    event SecretCreated(
        uint256 indexed secretId,
        address indexed owner,
        uint32 indexed clusterId,
        uint8 suite,
        bytes32 publicKeyHash,
        bytes publicKey
    );

    /// @notice Emitted when the owner adds a delegate or changes a delegate's expiry.
    /// @param secretId The secret id.
    /// @param delegate The delegate.
    /// @param expiresAt Unix time from which the delegation is void; 0 for never.
    event DelegateAdded(uint256 indexed secretId, address indexed delegate, uint64 expiresAt);

    /// @notice Emitted when the owner revokes a delegate.
    /// @param secretId The secret id.
    /// @param delegate The former delegate.
    event DelegateRevoked(uint256 indexed secretId, address indexed delegate);

    /// @notice Emitted when the owner proposes a new owner (or cancels with zero).
    /// @param secretId The secret id.
    /// @param owner The current owner.
    /// @param pendingOwner The proposed owner, or zero.
    event SecretOwnershipTransferStarted(
        uint256 indexed secretId, address indexed owner, address indexed pendingOwner
    );

    /// @notice Emitted when the pending owner accepts ownership. All delegations are void.
    /// @param secretId The secret id.
    /// @param previousOwner The former owner.
    /// @param newOwner The new owner.
    event SecretOwnershipTransferred(
        uint256 indexed secretId, address indexed previousOwner, address indexed newOwner
    );

    /// @notice Emitted when the owner shreds a secret. Nodes delete its fragments.
    /// @param secretId The secret id.
    /// @param owner The owner that shredded it.
    event SecretShredded(uint256 indexed secretId, address indexed owner);

    /// @notice Emitted when a black box anchors the root of its decryption log.
    /// @param blackBox The black box.
    /// @param count Number of log entries the root covers.
    /// @param root The root.
    event AuditRootAnchored(address indexed blackBox, uint64 indexed count, bytes32 root);

    /// @notice Emitted when the admin changes the creation fee.
    /// @param previousFee The former fee, in wei.
    /// @param newFee The new fee, in wei.
    event CreationFeeUpdated(uint256 previousFee, uint256 newFee);

    /// @notice Emitted when the admin withdraws the collected fees.
    /// @param recipient The recipient.
    /// @param amount The amount, in wei.
    event FeesWithdrawn(address indexed recipient, uint256 amount);

    /// @notice Creates a secret owned by the caller. `msg.value` must equal {creationFee}.
    /// @dev Public-key encodings: suite 0x01, the ML-KEM-768 encapsulation key (1,184 bytes);
    /// suite 0x02, the SEC1 compressed secp256k1 threshold key (33 bytes, first byte 0x02 or
    /// 0x03); suite 0x03, the ML-KEM-768 key followed by the compressed point (1,217 bytes).
    /// Only the hash is stored; the key is emitted from calldata.
    /// @param clusterId An active cluster that holds the secret's fragments.
    /// @param suite The suite byte.
    /// @param publicKey The public key in the suite's encoding.
    /// @return secretId The new secret id.
    function createSecret(uint32 clusterId, uint8 suite, bytes calldata publicKey)
        external
        payable
        returns (uint256 secretId);

    /// @notice Proposes `newOwner` as the secret's owner; zero cancels a pending proposal.
    /// Owner only; the secret must be active.
    /// @param secretId The secret id.
    /// @param newOwner The proposed owner.
    function transferSecretOwnership(uint256 secretId, address newOwner) external;

    /// @notice Accepts ownership of a secret. Pending owner only; the secret must be active.
    /// Voids every delegation of the secret.
    /// @param secretId The secret id.
    function acceptSecretOwnership(uint256 secretId) external;

    /// @notice Makes `delegate` a delegate of the secret, or changes its expiry. Owner only;
    /// the secret must be active.
    /// @param secretId The secret id.
    /// @param delegate The delegate; non-zero.
    /// @param expiresAt Unix time from which the delegation is void (must be in the future), or
    /// 0 for a delegation that lasts until revoked.
    function addDelegate(uint256 secretId, address delegate, uint64 expiresAt) external;

    /// @notice Revokes a delegate (also an expired one). Owner only; the secret must be active.
    /// @param secretId The secret id.
    /// @param delegate The delegate.
    function revokeDelegate(uint256 secretId, address delegate) external;

    /// @notice Destroys a secret for good: it authorizes nobody afterwards and nodes delete
    /// its fragments. Owner only; the secret must be active.
    /// @param secretId The secret id.
    function shred(uint256 secretId) external;

    /// @notice Anchors the root of the caller's decryption log. Registered black boxes only.
    /// @param root Merkle or hash-chain root over the first `count` entries; non-zero.
    /// @param count Number of entries covered; greater than the caller's previous count.
    function anchorAuditRoot(bytes32 root, uint64 count) external;

    /// @notice Sets the fee charged by {createSecret}. Admin only.
    /// @param fee The new fee, in wei (0 for none).
    function setCreationFee(uint256 fee) external;

    /// @notice Sends the collected fees to `recipient`. Admin only.
    /// @param recipient The recipient; non-zero.
    function withdrawFees(address payable recipient) external;

    /// @notice Whether `account` may decrypt with the secret now: the secret is active, its
    /// cluster is active, and `account` is its owner or a delegate that is neither revoked nor
    /// expired. Never true for the zero address or an unknown secret.
    /// @param secretId The secret id.
    /// @param account The account.
    /// @return authorized True if authorized.
    function isAuthorized(uint256 secretId, address account) external view returns (bool authorized);

    /// @notice A secret's record; state {SecretState.None} and zero fields for unknown ids.
    /// @param secretId The secret id.
    /// @return info The secret.
    function secret(uint256 secretId) external view returns (Secret memory info);

    /// @notice Whether `account` holds a delegation of the secret in the current ownership
    /// epoch, and until when. Does not look at expiry, secret state or cluster state: use
    /// {isAuthorized} for decisions.
    /// @param secretId The secret id.
    /// @param account The account.
    /// @return isDelegate True if the delegation exists.
    /// @return expiresAt Its expiry (unix seconds), 0 for never.
    function delegation(uint256 secretId, address account)
        external
        view
        returns (bool isDelegate, uint64 expiresAt);

    /// @notice Number of secrets ever created, which is also the last id.
    /// @return count The number of secrets.
    function secretCount() external view returns (uint256 count);

    /// @notice The fee charged by {createSecret}.
    /// @return fee The fee, in wei.
    function creationFee() external view returns (uint256 fee);

    /// @notice The registry of clusters and black boxes this controller trusts.
    /// @return registry The ClusterRegistry.
    function clusterRegistry() external view returns (IClusterRegistry registry);

    /// @notice The latest audit anchor of a black box (zero if none).
    /// @param blackBox The black box.
    /// @return anchor The anchor.
    function auditAnchor(address blackBox) external view returns (AuditAnchor memory anchor);

    /// @notice The EIP-712 digest a requester signs for `request` (PROTOCOL.md §4.2), under
    /// the domain {name: "CIFER", version: "1", chainId, verifyingContract: this contract}.
    /// Lets off-chain verifiers check their own encoding against the chain.
    /// @param request The request.
    /// @return digest The digest to sign.
    function hashDecryptRequest(DecryptRequest calldata request)
        external
        view
        returns (bytes32 digest);
}
