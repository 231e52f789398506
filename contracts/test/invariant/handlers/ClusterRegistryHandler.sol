// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.30;

import {ClusterRegistry} from "../../../src/ClusterRegistry.sol";
import {IClusterRegistry} from "../../../src/interfaces/IClusterRegistry.sol";
import {Test} from "../../utils/Test.sol";

/// @notice Drives a ClusterRegistry through random registrations, cluster creations,
/// removals, departures and (de)activations.
contract ClusterRegistryHandler is Test {
    ClusterRegistry public immutable registry;
    address public immutable governance;
    bytes private _key;

    /// @dev Active nodes that belong to no cluster.
    uint32[] private _freeNodes;

    constructor(ClusterRegistry registry_, address governance_, bytes memory key) {
        registry = registry_;
        governance = governance_;
        _key = key;
    }

    function registerNode(uint256 operatorSeed) external {
        address operator = address(uint160(bound(operatorSeed, 1, 8) + 0x0B00));
        vm.prank(governance);
        _freeNodes.push(registry.registerNode(operator, "https://n.example", _key, keccak256("m")));
    }

    function createCluster(uint256 sizeSeed, uint256 thresholdSeed) external {
        if (_freeNodes.length == 0) return;
        uint256 size = bound(sizeSeed, 1, _freeNodes.length < 7 ? _freeNodes.length : 7);
        uint32[] memory ids = new uint32[](size);
        for (uint256 i = 0; i < size; ++i) {
            ids[i] = _freeNodes[_freeNodes.length - 1];
            _freeNodes.pop();
        }
        // casting to 'uint8' is safe because threshold <= size <= 7
        // forge-lint: disable-next-line(unsafe-typecast)
        uint8 threshold = uint8(bound(thresholdSeed, 1, size));
        vm.prank(governance);
        registry.createCluster(ids, threshold);
    }

    function removeNode(uint256 nodeSeed) external {
        (uint32 nodeId, bool ok) = _activeNode(nodeSeed);
        if (!ok) return;
        vm.prank(governance);
        registry.removeNode(nodeId);
        _dropFree(nodeId);
    }

    function leave(uint256 nodeSeed) external {
        (uint32 nodeId, bool ok) = _activeNode(nodeSeed);
        if (!ok) return;
        vm.prank(registry.node(nodeId).operator);
        registry.leave(nodeId);
        _dropFree(nodeId);
    }

    function activate(uint256 clusterSeed) external {
        uint32 count = registry.clusterCount();
        if (count == 0) return;
        // casting to 'uint32' is safe because the result is <= count
        // forge-lint: disable-next-line(unsafe-typecast)
        uint32 id = uint32(bound(clusterSeed, 1, count));
        vm.prank(governance);
        try registry.activateCluster(id) {} catch {}
    }

    function deactivate(uint256 clusterSeed) external {
        uint32 count = registry.clusterCount();
        if (count == 0) return;
        // casting to 'uint32' is safe because the result is <= count
        // forge-lint: disable-next-line(unsafe-typecast)
        uint32 id = uint32(bound(clusterSeed, 1, count));
        vm.prank(governance);
        try registry.deactivateCluster(id) {} catch {}
    }

    function _activeNode(uint256 seed) private view returns (uint32 nodeId, bool ok) {
        uint32 count = registry.nodeCount();
        if (count == 0) return (0, false);
        // casting to 'uint32' is safe because the result is <= count
        // forge-lint: disable-next-line(unsafe-typecast)
        nodeId = uint32(bound(seed, 1, count));
        ok = registry.node(nodeId).status == IClusterRegistry.NodeStatus.Active;
    }

    function _dropFree(uint32 nodeId) private {
        for (uint256 i = 0; i < _freeNodes.length; ++i) {
            if (_freeNodes[i] == nodeId) {
                _freeNodes[i] = _freeNodes[_freeNodes.length - 1];
                _freeNodes.pop();
                return;
            }
        }
    }
}
