// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.30;

import {ClusterRegistry} from "../../src/ClusterRegistry.sol";
import {SecretsController} from "../../src/SecretsController.sol";
import {IClusterRegistry} from "../../src/interfaces/IClusterRegistry.sol";
import {Test} from "./Test.sol";

/// @notice A deployment with five registered nodes, one 3-of-5 cluster and one black box.
abstract contract CiferFixture is Test {
    uint256 internal constant EK_LENGTH = 1184;
    uint8 internal constant SUITE_MLKEM768 = 0x01;
    uint8 internal constant SUITE_K256_TECIES = 0x02;
    uint8 internal constant SUITE_HYBRID = 0x03;
    uint8 internal constant THRESHOLD = 3;
    uint256 internal constant CLUSTER_SIZE = 5;
    bytes32 internal constant ATTESTATION = keccak256("node measurement");
    bytes32 internal constant BLACK_BOX_ATTESTATION = keccak256("black box measurement");

    address internal governance = address(0x60);
    address internal admin = address(0xAD);
    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);
    address internal carol = address(0xCA201);
    address internal blackBoxAccount = address(0xB1AC);
    address internal blackBoxSigner = address(0x5161);

    ClusterRegistry internal registry;
    SecretsController internal controller;
    uint32[] internal memberIds;
    uint32 internal clusterId;
    bytes internal ek;

    function setUp() public virtual {
        registry = new ClusterRegistry(governance);
        controller = new SecretsController(admin, registry);
        ek = pseudoRandomBytes(1, EK_LENGTH);

        vm.startPrank(governance);
        for (uint256 i = 0; i < CLUSTER_SIZE; ++i) {
            memberIds.push(
                registry.registerNode(
                    operatorOf(i), "https://node.example", nodeKey(i), ATTESTATION
                )
            );
        }
        clusterId = registry.createCluster(memberIds, THRESHOLD);
        registry.registerBlackBox(blackBoxAccount, blackBoxSigner, BLACK_BOX_ATTESTATION);
        vm.stopPrank();

        vm.label(address(registry), "ClusterRegistry");
        vm.label(address(controller), "SecretsController");
        vm.label(alice, "alice");
        vm.label(bob, "bob");
        vm.label(carol, "carol");
    }

    function operatorOf(uint256 i) internal pure returns (address) {
        return address(uint160(0x0900 + i));
    }

    function nodeKey(uint256 i) internal pure returns (bytes memory) {
        return pseudoRandomBytes(1000 + i, EK_LENGTH);
    }

    /// @dev A secret owned by `owner` on the fixture's cluster.
    function createSecretAs(address owner) internal returns (uint256 secretId) {
        vm.prank(owner);
        secretId = controller.createSecret(clusterId, SUITE_MLKEM768, ek);
    }

    function isMemberActive(uint32 nodeId) internal view returns (bool) {
        return registry.node(nodeId).status == IClusterRegistry.NodeStatus.Active;
    }
}
