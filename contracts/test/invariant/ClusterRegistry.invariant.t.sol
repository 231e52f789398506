// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.30;

import {ClusterRegistry} from "../../src/ClusterRegistry.sol";
import {IClusterRegistry} from "../../src/interfaces/IClusterRegistry.sol";
import {Test} from "../utils/Test.sol";
import {ClusterRegistryHandler} from "./handlers/ClusterRegistryHandler.sol";

contract ClusterRegistryInvariantTest is Test {
    ClusterRegistry internal registry;
    ClusterRegistryHandler internal handler;

    function setUp() public {
        address governance = address(0x60);
        registry = new ClusterRegistry(governance);
        handler = new ClusterRegistryHandler(registry, governance, pseudoRandomBytes(3, 1184));
        targetContract(address(handler));
    }

    /// @dev Counts a cluster's members that are really active, from the node records.
    function _countActive(IClusterRegistry.Cluster memory c) private view returns (uint256 n) {
        for (uint256 i = 0; i < c.members.length; ++i) {
            if (registry.node(c.members[i]).status == IClusterRegistry.NodeStatus.Active) ++n;
        }
    }

    function invariant_clusterBelowThresholdNeverActive() public view {
        uint32 count = registry.clusterCount();
        for (uint32 id = 1; id <= count; ++id) {
            IClusterRegistry.Cluster memory c = registry.cluster(id);
            if (_countActive(c) < c.threshold) assertFalse(registry.isClusterActive(id));
        }
    }

    function invariant_activeMemberCountIsExact() public view {
        uint32 count = registry.clusterCount();
        for (uint32 id = 1; id <= count; ++id) {
            IClusterRegistry.Cluster memory c = registry.cluster(id);
            assertEq(uint256(c.activeMembers), _countActive(c));
            assertEq(uint256(c.size), c.members.length);
            assertTrue(c.threshold >= 1 && c.threshold <= c.size);
        }
    }

    function invariant_membersPointBackToTheirCluster() public view {
        uint32 count = registry.clusterCount();
        for (uint32 id = 1; id <= count; ++id) {
            uint32[] memory members = registry.clusterMembers(id);
            for (uint256 i = 0; i < members.length; ++i) {
                assertEq(uint256(registry.node(members[i]).clusterId), uint256(id));
            }
        }
    }

    function invariant_unknownClusterNeverActive() public view {
        assertFalse(registry.isClusterActive(0));
        assertFalse(registry.isClusterActive(registry.clusterCount() + 1));
    }
}
