// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.30;

import {ClusterRegistry} from "../src/ClusterRegistry.sol";
import {IClusterRegistry} from "../src/interfaces/IClusterRegistry.sol";
import {CiferFixture} from "./utils/CiferFixture.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

contract ClusterRegistryTest is CiferFixture {
    address internal newOperator = address(0x0E0);

    function registerFreshNode() internal returns (uint32 nodeId) {
        vm.prank(governance);
        nodeId = registry.registerNode(newOperator, "https://new.example", nodeKey(42), ATTESTATION);
    }

    function freshNodes(uint256 count) internal returns (uint32[] memory ids) {
        ids = new uint32[](count);
        for (uint256 i = 0; i < count; ++i) {
            ids[i] = registerFreshNode();
        }
    }

    // ---------------------------------------------------------------- fixture state

    function test_fixture_clusterIsActive() public view {
        assertEq(registry.owner(), governance);
        assertEq(uint256(registry.nodeCount()), CLUSTER_SIZE);
        assertEq(uint256(registry.clusterCount()), 1);
        assertTrue(registry.isClusterActive(clusterId));
        assertEq(uint256(registry.clusterThreshold(clusterId)), THRESHOLD);
        uint32[] memory members = registry.clusterMembers(clusterId);
        assertEq(members.length, CLUSTER_SIZE);
        for (uint256 i = 0; i < members.length; ++i) {
            assertEq(uint256(members[i]), uint256(memberIds[i]));
        }
        IClusterRegistry.Cluster memory c = registry.cluster(clusterId);
        assertTrue(c.status == IClusterRegistry.ClusterStatus.Active);
        assertEq(uint256(c.size), CLUSTER_SIZE);
        assertEq(uint256(c.activeMembers), CLUSTER_SIZE);
        assertEq(uint256(c.threshold), THRESHOLD);
    }

    // ---------------------------------------------------------------- registerNode

    function test_registerNode_recordsNode() public {
        bytes memory key = nodeKey(42);
        vm.expectEmit(address(registry));
        emit IClusterRegistry.NodeRegistered(
            6, newOperator, "https://new.example", keccak256(key), ATTESTATION, key
        );
        uint32 nodeId = registerFreshNode();
        assertEq(uint256(nodeId), 6);
        IClusterRegistry.Node memory n = registry.node(nodeId);
        assertEq(n.operator, newOperator);
        assertTrue(n.status == IClusterRegistry.NodeStatus.Active);
        assertEq(uint256(n.clusterId), 0);
        assertEq(n.publicKeyHash, keccak256(key));
        assertEq(n.attestationHash, ATTESTATION);
        assertEq(bytes(n.endpoint), bytes("https://new.example"));
    }

    function test_registerNode_revertsIfNotGovernance() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        registry.registerNode(alice, "e", nodeKey(1), ATTESTATION);
    }

    function test_registerNode_revertsIfOperatorZero() public {
        vm.prank(governance);
        vm.expectRevert(
            abi.encodeWithSelector(
                IClusterRegistry.ClusterRegistryInvalidOperator.selector, address(0)
            )
        );
        registry.registerNode(address(0), "e", nodeKey(1), ATTESTATION);
    }

    function test_registerNode_revertsIfEndpointEmpty() public {
        vm.prank(governance);
        vm.expectRevert(IClusterRegistry.ClusterRegistryInvalidEndpoint.selector);
        registry.registerNode(alice, "", nodeKey(1), ATTESTATION);
    }

    function test_registerNode_revertsIfKeyLengthWrong() public {
        vm.prank(governance);
        vm.expectRevert(
            abi.encodeWithSelector(
                IClusterRegistry.ClusterRegistryInvalidNodePublicKey.selector, uint256(32)
            )
        );
        registry.registerNode(alice, "e", new bytes(32), ATTESTATION);
    }

    function test_registerNode_revertsIfAttestationZero() public {
        vm.prank(governance);
        vm.expectRevert(IClusterRegistry.ClusterRegistryInvalidAttestation.selector);
        registry.registerNode(alice, "e", nodeKey(1), bytes32(0));
    }

    // ---------------------------------------------------------------- updateNode

    function test_updateNode_replacesFields() public {
        bytes memory key = nodeKey(77);
        bytes32 attestation = keccak256("v2");
        vm.expectEmit(address(registry));
        emit IClusterRegistry.NodeUpdated(
            memberIds[0], "https://moved.example", keccak256(key), attestation, key
        );
        vm.prank(governance);
        registry.updateNode(memberIds[0], "https://moved.example", key, attestation);
        IClusterRegistry.Node memory n = registry.node(memberIds[0]);
        assertEq(n.publicKeyHash, keccak256(key));
        assertEq(n.attestationHash, attestation);
        assertEq(bytes(n.endpoint), bytes("https://moved.example"));
        assertEq(uint256(n.clusterId), uint256(clusterId));
        assertTrue(registry.isClusterActive(clusterId));
    }

    function test_updateNode_revertsIfNotGovernance() public {
        vm.prank(operatorOf(0));
        vm.expectRevert(
            abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, operatorOf(0))
        );
        registry.updateNode(memberIds[0], "e", nodeKey(1), ATTESTATION);
    }

    function test_updateNode_revertsIfNodeNotActive() public {
        vm.startPrank(governance);
        registry.removeNode(memberIds[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                IClusterRegistry.ClusterRegistryNodeNotActive.selector, memberIds[0]
            )
        );
        registry.updateNode(memberIds[0], "e", nodeKey(1), ATTESTATION);
        vm.expectRevert(
            abi.encodeWithSelector(IClusterRegistry.ClusterRegistryNodeNotActive.selector, 99)
        );
        registry.updateNode(99, "e", nodeKey(1), ATTESTATION);
        vm.stopPrank();
    }

    // ---------------------------------------------------------------- removeNode / leave

    function test_removeNode_deactivatesCluster() public {
        uint32 nodeId = memberIds[2];
        vm.expectEmit(address(registry));
        emit IClusterRegistry.ClusterMemberRetired(clusterId, nodeId, 4);
        vm.expectEmit(address(registry));
        emit IClusterRegistry.ClusterDeactivated(clusterId);
        vm.expectEmit(address(registry));
        emit IClusterRegistry.NodeRemoved(nodeId, operatorOf(2));
        vm.prank(governance);
        registry.removeNode(nodeId);
        assertTrue(registry.node(nodeId).status == IClusterRegistry.NodeStatus.Retired);
        assertFalse(registry.isClusterActive(clusterId));
        IClusterRegistry.Cluster memory c = registry.cluster(clusterId);
        assertTrue(c.status == IClusterRegistry.ClusterStatus.Inactive);
        assertEq(uint256(c.activeMembers), 4);
    }

    function test_removeNode_outsideClusterLeavesClustersAlone() public {
        uint32 nodeId = registerFreshNode();
        vm.prank(governance);
        registry.removeNode(nodeId);
        assertTrue(registry.isClusterActive(clusterId));
    }

    function test_removeNode_revertsIfNotGovernance() public {
        vm.prank(operatorOf(0));
        vm.expectRevert(
            abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, operatorOf(0))
        );
        registry.removeNode(memberIds[0]);
    }

    function test_removeNode_revertsIfAlreadyRetired() public {
        vm.startPrank(governance);
        registry.removeNode(memberIds[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                IClusterRegistry.ClusterRegistryNodeNotActive.selector, memberIds[0]
            )
        );
        registry.removeNode(memberIds[0]);
        vm.stopPrank();
    }

    function test_leave_deactivatesCluster() public {
        vm.expectEmit(address(registry));
        emit IClusterRegistry.ClusterMemberRetired(clusterId, memberIds[1], 4);
        vm.expectEmit(address(registry));
        emit IClusterRegistry.ClusterDeactivated(clusterId);
        vm.expectEmit(address(registry));
        emit IClusterRegistry.NodeLeft(memberIds[1], operatorOf(1));
        vm.prank(operatorOf(1));
        registry.leave(memberIds[1]);
        assertFalse(registry.isClusterActive(clusterId));
    }

    function test_leave_revertsIfNotOperator() public {
        vm.prank(operatorOf(2));
        vm.expectRevert(
            abi.encodeWithSelector(
                IClusterRegistry.ClusterRegistryUnauthorizedOperator.selector,
                memberIds[1],
                operatorOf(2)
            )
        );
        registry.leave(memberIds[1]);
    }

    function test_leave_revertsIfAlreadyRetired() public {
        vm.startPrank(operatorOf(1));
        registry.leave(memberIds[1]);
        vm.expectRevert(
            abi.encodeWithSelector(
                IClusterRegistry.ClusterRegistryNodeNotActive.selector, memberIds[1]
            )
        );
        registry.leave(memberIds[1]);
        vm.stopPrank();
    }

    // ---------------------------------------------------------------- createCluster

    function test_createCluster_recordsCluster() public {
        uint32[] memory ids = freshNodes(5);
        vm.expectEmit(address(registry));
        emit IClusterRegistry.ClusterCreated(2, 3, ids);
        vm.prank(governance);
        uint32 id = registry.createCluster(ids, 3);
        assertEq(uint256(id), 2);
        assertTrue(registry.isClusterActive(id));
        for (uint256 i = 0; i < ids.length; ++i) {
            assertEq(uint256(registry.node(ids[i]).clusterId), 2);
        }
    }

    function test_createCluster_revertsIfNotGovernance() public {
        uint32[] memory ids = freshNodes(5);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        registry.createCluster(ids, 3);
    }

    function test_createCluster_revertsIfSizeInvalid() public {
        vm.startPrank(governance);
        vm.expectRevert(
            abi.encodeWithSelector(IClusterRegistry.ClusterRegistryInvalidClusterSize.selector, 0)
        );
        registry.createCluster(new uint32[](0), 1);
        vm.stopPrank();
        uint32[] memory ids = freshNodes(33);
        vm.prank(governance);
        vm.expectRevert(
            abi.encodeWithSelector(IClusterRegistry.ClusterRegistryInvalidClusterSize.selector, 33)
        );
        registry.createCluster(ids, 3);
    }

    function test_createCluster_revertsIfThresholdInvalid() public {
        uint32[] memory ids = freshNodes(5);
        vm.startPrank(governance);
        vm.expectRevert(
            abi.encodeWithSelector(IClusterRegistry.ClusterRegistryInvalidThreshold.selector, 0, 5)
        );
        registry.createCluster(ids, 0);
        vm.expectRevert(
            abi.encodeWithSelector(IClusterRegistry.ClusterRegistryInvalidThreshold.selector, 6, 5)
        );
        registry.createCluster(ids, 6);
        vm.stopPrank();
    }

    function test_createCluster_revertsIfNodeInCluster() public {
        uint32[] memory ids = freshNodes(3);
        ids[1] = memberIds[0];
        vm.prank(governance);
        vm.expectRevert(
            abi.encodeWithSelector(
                IClusterRegistry.ClusterRegistryNodeAlreadyInCluster.selector,
                memberIds[0],
                clusterId
            )
        );
        registry.createCluster(ids, 2);
    }

    function test_createCluster_revertsIfNodeDuplicated() public {
        uint32[] memory ids = freshNodes(3);
        ids[2] = ids[0];
        vm.prank(governance);
        vm.expectRevert(
            abi.encodeWithSelector(
                IClusterRegistry.ClusterRegistryNodeAlreadyInCluster.selector, ids[0], 2
            )
        );
        registry.createCluster(ids, 2);
    }

    function test_createCluster_revertsIfNodeNotActive() public {
        uint32[] memory ids = freshNodes(3);
        vm.startPrank(governance);
        registry.removeNode(ids[1]);
        vm.expectRevert(
            abi.encodeWithSelector(IClusterRegistry.ClusterRegistryNodeNotActive.selector, ids[1])
        );
        registry.createCluster(ids, 2);
        ids[1] = 99;
        vm.expectRevert(
            abi.encodeWithSelector(IClusterRegistry.ClusterRegistryNodeNotActive.selector, 99)
        );
        registry.createCluster(ids, 2);
        vm.stopPrank();
    }

    // ---------------------------------------------------------------- activate / deactivate

    function test_deactivateCluster_deactivates() public {
        vm.expectEmit(address(registry));
        emit IClusterRegistry.ClusterDeactivated(clusterId);
        vm.prank(governance);
        registry.deactivateCluster(clusterId);
        assertFalse(registry.isClusterActive(clusterId));
    }

    function test_deactivateCluster_revertsIfNotGovernance() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        registry.deactivateCluster(clusterId);
    }

    function test_deactivateCluster_revertsIfInactive() public {
        vm.startPrank(governance);
        registry.deactivateCluster(clusterId);
        vm.expectRevert(
            abi.encodeWithSelector(
                IClusterRegistry.ClusterRegistryClusterAlreadyInactive.selector, clusterId
            )
        );
        registry.deactivateCluster(clusterId);
        vm.stopPrank();
    }

    function test_deactivateCluster_revertsIfUnknown() public {
        vm.prank(governance);
        vm.expectRevert(
            abi.encodeWithSelector(IClusterRegistry.ClusterRegistryUnknownCluster.selector, 9)
        );
        registry.deactivateCluster(9);
    }

    function test_activateCluster_reactivates() public {
        vm.startPrank(governance);
        registry.deactivateCluster(clusterId);
        vm.expectEmit(address(registry));
        emit IClusterRegistry.ClusterActivated(clusterId);
        registry.activateCluster(clusterId);
        vm.stopPrank();
        assertTrue(registry.isClusterActive(clusterId));
    }

    function test_activateCluster_revertsIfAlreadyActive() public {
        vm.prank(governance);
        vm.expectRevert(
            abi.encodeWithSelector(
                IClusterRegistry.ClusterRegistryClusterAlreadyActive.selector, clusterId
            )
        );
        registry.activateCluster(clusterId);
    }

    function test_activateCluster_revertsBelowThreshold() public {
        vm.startPrank(governance);
        registry.removeNode(memberIds[0]);
        registry.removeNode(memberIds[1]);
        registry.removeNode(memberIds[2]);
        vm.expectRevert(
            abi.encodeWithSelector(
                IClusterRegistry.ClusterRegistryInsufficientActiveMembers.selector, clusterId, 2, 3
            )
        );
        registry.activateCluster(clusterId);
        vm.stopPrank();
    }

    function test_activateCluster_revertsIfNotGovernance() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        registry.activateCluster(clusterId);
    }

    function test_activateCluster_revertsIfUnknown() public {
        vm.prank(governance);
        vm.expectRevert(
            abi.encodeWithSelector(IClusterRegistry.ClusterRegistryUnknownCluster.selector, 0)
        );
        registry.activateCluster(0);
    }

    // ---------------------------------------------------------------- views on unknown ids

    function test_views_unknownIds() public {
        assertFalse(registry.isClusterActive(0));
        assertFalse(registry.isClusterActive(9));
        assertTrue(registry.node(99).status == IClusterRegistry.NodeStatus.None);
        vm.expectRevert(
            abi.encodeWithSelector(IClusterRegistry.ClusterRegistryUnknownCluster.selector, 9)
        );
        registry.cluster(9);
        vm.expectRevert(
            abi.encodeWithSelector(IClusterRegistry.ClusterRegistryUnknownCluster.selector, 9)
        );
        registry.clusterMembers(9);
        vm.expectRevert(
            abi.encodeWithSelector(IClusterRegistry.ClusterRegistryUnknownCluster.selector, 9)
        );
        registry.clusterThreshold(9);
    }

    // ---------------------------------------------------------------- black boxes

    function test_registerBlackBox_records() public {
        vm.expectEmit(address(registry));
        emit IClusterRegistry.BlackBoxRegistered(alice, bob, BLACK_BOX_ATTESTATION);
        vm.prank(governance);
        registry.registerBlackBox(alice, bob, BLACK_BOX_ATTESTATION);
        assertTrue(registry.isBlackBox(alice));
        IClusterRegistry.BlackBox memory b = registry.blackBox(alice);
        assertTrue(b.registered);
        assertEq(b.signer, bob);
        assertEq(b.attestationHash, BLACK_BOX_ATTESTATION);
        assertFalse(registry.isBlackBox(bob));
    }

    function test_registerBlackBox_revertsIfNotGovernance() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        registry.registerBlackBox(alice, bob, BLACK_BOX_ATTESTATION);
    }

    function test_registerBlackBox_revertsIfZeroAccounts() public {
        vm.startPrank(governance);
        vm.expectRevert(
            abi.encodeWithSelector(
                IClusterRegistry.ClusterRegistryInvalidBlackBox.selector, address(0)
            )
        );
        registry.registerBlackBox(address(0), bob, BLACK_BOX_ATTESTATION);
        vm.expectRevert(
            abi.encodeWithSelector(
                IClusterRegistry.ClusterRegistryInvalidBlackBox.selector, address(0)
            )
        );
        registry.registerBlackBox(alice, address(0), BLACK_BOX_ATTESTATION);
        vm.expectRevert(IClusterRegistry.ClusterRegistryInvalidAttestation.selector);
        registry.registerBlackBox(alice, bob, bytes32(0));
        vm.stopPrank();
    }

    function test_registerBlackBox_revertsIfRegistered() public {
        vm.prank(governance);
        vm.expectRevert(
            abi.encodeWithSelector(
                IClusterRegistry.ClusterRegistryBlackBoxAlreadyRegistered.selector, blackBoxAccount
            )
        );
        registry.registerBlackBox(blackBoxAccount, bob, BLACK_BOX_ATTESTATION);
    }

    function test_removeBlackBox_removes() public {
        vm.expectEmit(address(registry));
        emit IClusterRegistry.BlackBoxRemoved(blackBoxAccount);
        vm.prank(governance);
        registry.removeBlackBox(blackBoxAccount);
        assertFalse(registry.isBlackBox(blackBoxAccount));
        assertEq(registry.blackBox(blackBoxAccount).signer, address(0));
    }

    function test_removeBlackBox_revertsIfUnknown() public {
        vm.prank(governance);
        vm.expectRevert(
            abi.encodeWithSelector(IClusterRegistry.ClusterRegistryUnknownBlackBox.selector, alice)
        );
        registry.removeBlackBox(alice);
    }

    function test_removeBlackBox_revertsIfNotGovernance() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        registry.removeBlackBox(blackBoxAccount);
    }

    // ---------------------------------------------------------------- governance

    function test_renounceOwnership_reverts() public {
        vm.prank(governance);
        vm.expectRevert(IClusterRegistry.ClusterRegistryRenounceOwnershipDisabled.selector);
        registry.renounceOwnership();
    }

    function test_transferOwnership_isTwoStep() public {
        vm.prank(governance);
        registry.transferOwnership(alice);
        assertEq(registry.pendingOwner(), alice);
        assertEq(registry.owner(), governance);
        vm.prank(alice);
        registry.acceptOwnership();
        assertEq(registry.owner(), alice);
    }

    function test_constructor_revertsIfGovernanceZero() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableInvalidOwner.selector, address(0)));
        new ClusterRegistry(address(0));
    }

    // ---------------------------------------------------------------- fuzz

    function testFuzz_createCluster_anyValidShape(uint256 size, uint256 threshold) public {
        size = bound(size, 1, registry.MAX_CLUSTER_SIZE());
        threshold = bound(threshold, 1, size);
        uint32[] memory ids = freshNodes(size);
        vm.prank(governance);
        // casting to 'uint8' is safe because threshold <= size <= 32
        // forge-lint: disable-next-line(unsafe-typecast)
        uint32 id = registry.createCluster(ids, uint8(threshold));
        assertTrue(registry.isClusterActive(id));
        assertEq(uint256(registry.clusterThreshold(id)), threshold);
        assertEq(registry.clusterMembers(id).length, size);
    }

    function testFuzz_removeNode_activeOnlyWithThreshold(uint256 removals) public {
        removals = bound(removals, 0, CLUSTER_SIZE);
        vm.startPrank(governance);
        for (uint256 i = 0; i < removals; ++i) {
            registry.removeNode(memberIds[i]);
        }
        if (removals > 0) {
            assertFalse(registry.isClusterActive(clusterId));
            if (CLUSTER_SIZE - removals >= THRESHOLD) {
                registry.activateCluster(clusterId);
                assertTrue(registry.isClusterActive(clusterId));
            } else {
                vm.expectRevert(
                    abi.encodeWithSelector(
                        IClusterRegistry.ClusterRegistryInsufficientActiveMembers.selector,
                        clusterId,
                        CLUSTER_SIZE - removals,
                        THRESHOLD
                    )
                );
                registry.activateCluster(clusterId);
            }
        } else {
            assertTrue(registry.isClusterActive(clusterId));
        }
        vm.stopPrank();
    }
}
