// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.30;

/// @title SafeLikeWallet
/// @notice A minimal multisig smart account for the end-to-end tests: like a Safe, it
/// holds secrets as an ordinary contract account, acts through `execute`, and answers
/// EIP-1271 `isValidSignature` with the magic value only for `threshold` distinct owner
/// signatures over the hash, concatenated in ascending signer order. Test code: no replay
/// protection on `execute` beyond owner-only calls.
contract SafeLikeWallet {
    /// @notice EIP-1271 magic value.
    bytes4 internal constant MAGIC_VALUE = 0x1626ba7e;
    /// @notice secp256k1 order / 2: signatures with a larger `s` are refused (malleable).
    uint256 internal constant HALF_ORDER =
        0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    /// @notice Thrown when a caller of `execute` is not an owner.
    error SafeLikeWalletNotOwner(address caller);
    /// @notice Thrown when the wrapped call reverts.
    error SafeLikeWalletCallFailed(bytes reason);

    /// @notice Whether an address is an owner.
    mapping(address owner => bool isOwner) public isOwner;
    /// @notice Signatures needed by `isValidSignature`.
    uint256 public immutable threshold;

    /// @param owners The owners.
    /// @param threshold_ Signatures needed.
    constructor(address[] memory owners, uint256 threshold_) {
        for (uint256 i = 0; i < owners.length; ++i) {
            isOwner[owners[i]] = true;
        }
        threshold = threshold_;
    }

    /// @notice Calls `to` with `data` and `value` from this account (owners only).
    /// @param to The target.
    /// @param value Wei to send.
    /// @param data Calldata.
    /// @return result The call's return data.
    function execute(address to, uint256 value, bytes calldata data)
        external
        returns (bytes memory result)
    {
        if (!isOwner[msg.sender]) revert SafeLikeWalletNotOwner(msg.sender);
        bool ok;
        (ok, result) = to.call{value: value}(data);
        if (!ok) revert SafeLikeWalletCallFailed(result);
    }

    /// @notice EIP-1271: `threshold` owner signatures (65 bytes each, ascending signers).
    /// @param hash The signed digest.
    /// @param signatures The concatenated signatures.
    /// @return magic `0x1626ba7e` if valid, `0xffffffff` otherwise.
    function isValidSignature(bytes32 hash, bytes calldata signatures)
        external
        view
        returns (bytes4 magic)
    {
        if (signatures.length != threshold * 65) return 0xffffffff;
        address last = address(0);
        for (uint256 i = 0; i < threshold; ++i) {
            bytes32 r = bytes32(signatures[i * 65:i * 65 + 32]);
            bytes32 s = bytes32(signatures[i * 65 + 32:i * 65 + 64]);
            uint8 v = uint8(signatures[i * 65 + 64]);
            if (uint256(s) > HALF_ORDER) return 0xffffffff;
            address signer = ecrecover(hash, v, r, s);
            if (signer <= last || !isOwner[signer]) return 0xffffffff;
            last = signer;
        }
        return MAGIC_VALUE;
    }
}
