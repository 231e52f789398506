// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.30;

import {VM, Vm} from "./Vm.sol";

/// @title Test
/// @notice A minimal stand-in for forge-std's Test: assertions, `bound`, and the invariant
/// target hooks that forge reads from a test contract.
abstract contract Test {
    /// @notice A contract and the selectors of it that the invariant fuzzer may call.
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    /// @notice Thrown by {bound} when `min > max`.
    error TestInvalidBound(uint256 min, uint256 max);

    // forge-lint: disable-next-line(screaming-snake-case-const)
    Vm internal constant vm = VM;

    address[] private _targetedContracts;
    address[] private _targetedSenders;
    FuzzSelector[] private _targetedSelectors;

    // ---- Invariant hooks (forge calls these when they exist) ----

    /// @notice Contracts the invariant fuzzer calls.
    function targetContracts() public view returns (address[] memory) {
        return _targetedContracts;
    }

    /// @notice Selectors the invariant fuzzer calls, per contract.
    function targetSelectors() public view returns (FuzzSelector[] memory) {
        return _targetedSelectors;
    }

    /// @notice Senders the invariant fuzzer uses.
    function targetSenders() public view returns (address[] memory) {
        return _targetedSenders;
    }

    function targetContract(address target) internal {
        _targetedContracts.push(target);
    }

    function targetSelector(FuzzSelector memory selector) internal {
        _targetedSelectors.push(selector);
    }

    function targetSender(address sender) internal {
        _targetedSenders.push(sender);
    }

    // ---- Assertions ----

    function assertTrue(bool condition) internal pure {
        vm.assertTrue(condition, "assertTrue");
    }

    function assertTrue(bool condition, string memory error) internal pure {
        vm.assertTrue(condition, error);
    }

    function assertFalse(bool condition) internal pure {
        vm.assertFalse(condition, "assertFalse");
    }

    function assertFalse(bool condition, string memory error) internal pure {
        vm.assertFalse(condition, error);
    }

    function assertEq(bool left, bool right) internal pure {
        vm.assertEq(left, right, "assertEq(bool)");
    }

    function assertEq(uint256 left, uint256 right) internal pure {
        vm.assertEq(left, right, "assertEq(uint256)");
    }

    function assertEq(uint256 left, uint256 right, string memory error) internal pure {
        vm.assertEq(left, right, error);
    }

    function assertEq(address left, address right) internal pure {
        vm.assertEq(left, right, "assertEq(address)");
    }

    function assertEq(bytes32 left, bytes32 right) internal pure {
        vm.assertEq(left, right, "assertEq(bytes32)");
    }

    function assertEq(bytes memory left, bytes memory right) internal pure {
        vm.assertEq(left, right, "assertEq(bytes)");
    }

    function assertLe(uint256 left, uint256 right, string memory error) internal pure {
        vm.assertLe(left, right, error);
    }

    // ---- Fuzzing helpers ----

    /// @notice Maps `x` into [min, max], leaving values already in range unchanged so that the
    /// fuzzer's edge values (0, 1, max) still reach the bounds.
    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        if (min > max) revert TestInvalidBound(min, max);
        if (x >= min && x <= max) return x;
        uint256 span = max - min;
        if (span == type(uint256).max) return x;
        return min + (x % (span + 1));
    }

    /// @notice Builds `length` deterministic pseudo-random bytes from `seed`.
    function pseudoRandomBytes(uint256 seed, uint256 length)
        internal
        pure
        returns (bytes memory out)
    {
        out = new bytes(length);
        bytes32 word = keccak256(abi.encode(seed));
        for (uint256 i = 0; i < length; ++i) {
            if (i % 32 == 0 && i != 0) word = keccak256(abi.encode(word));
            out[i] = word[i % 32];
        }
    }
}
