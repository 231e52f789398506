// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.30;

import {ClusterRegistry} from "../src/ClusterRegistry.sol";
import {SecretsController} from "../src/SecretsController.sol";
import {VM, Vm} from "../test/utils/Vm.sol";

/// @title Deploy
/// @notice Deploys ClusterRegistry and SecretsController and, optionally, registers nodes, a
/// cluster and a black box from a JSON file. Run through scripts/deploy.sh.
/// @dev Environment:
///   PRIVATE_KEY      deployer key; if unset, forge's --account/--keystore/--sender is used.
///   GOVERNANCE       final registry governance (default: deployer). If it differs from the
///                    deployer, a two-step transfer is started and GOVERNANCE must accept.
///   ADMIN            final SecretsController admin (default: deployer), same two-step rule.
///   CLUSTER_CONFIG   optional path to a JSON file:
///     { "threshold": 3,
///       "nodes": [ { "operator": "0x..", "endpoint": "https://..",
///                    "publicKey": "0x<1184 bytes>", "attestationHash": "0x<32 bytes>" }, ... ],
///       "blackBox": { "account": "0x..", "signer": "0x..", "attestationHash": "0x.." } }
///     "blackBox" is optional. Nodes are registered, then one cluster is created from them.
contract Deploy {
    Vm internal constant vm = VM;

    /// @notice Addresses of the deployed contracts and of the cluster, if one was created.
    function run()
        external
        returns (ClusterRegistry registry, SecretsController controller, uint32 clusterId)
    {
        uint256 privateKey = vm.envOr("PRIVATE_KEY", uint256(0));
        if (privateKey != 0) vm.startBroadcast(privateKey);
        else vm.startBroadcast();

        // The deployer governs until setup is done; ownership then moves in two steps.
        address deployer = msg.sender;
        if (privateKey != 0) deployer = vm.addr(privateKey);
        registry = new ClusterRegistry(deployer);
        controller = new SecretsController(deployer, registry);

        string memory configPath = vm.envOr("CLUSTER_CONFIG", string(""));
        if (bytes(configPath).length != 0) {
            clusterId = _configure(registry, vm.readFile(configPath));
        }

        address governance = vm.envOr("GOVERNANCE", deployer);
        if (governance != deployer) registry.transferOwnership(governance);
        address admin = vm.envOr("ADMIN", deployer);
        if (admin != deployer) controller.transferOwnership(admin);

        vm.stopBroadcast();
    }

    function _configure(ClusterRegistry registry, string memory json)
        private
        returns (uint32 clusterId)
    {
        uint256 count = 0;
        while (vm.keyExistsJson(json, string.concat(".nodes[", vm.toString(count), "]"))) {
            ++count;
        }
        if (count != 0) {
            uint32[] memory ids = new uint32[](count);
            for (uint256 i = 0; i < count; ++i) {
                string memory p = string.concat(".nodes[", vm.toString(i), "]");
                ids[i] = registry.registerNode(
                    vm.parseJsonAddress(json, string.concat(p, ".operator")),
                    vm.parseJsonString(json, string.concat(p, ".endpoint")),
                    vm.parseJsonBytes(json, string.concat(p, ".publicKey")),
                    vm.parseJsonBytes32(json, string.concat(p, ".attestationHash"))
                );
            }
            uint256 threshold = vm.parseJsonUint(json, ".threshold");
            // casting to 'uint8' is safe because createCluster rejects threshold > size <= 32,
            // and larger values are caught here first
            // forge-lint: disable-next-line(unsafe-typecast)
            uint8 t = threshold > type(uint8).max ? 0 : uint8(threshold);
            clusterId = registry.createCluster(ids, t);
        }
        if (vm.keyExistsJson(json, ".blackBox")) {
            registry.registerBlackBox(
                vm.parseJsonAddress(json, ".blackBox.account"),
                vm.parseJsonAddress(json, ".blackBox.signer"),
                vm.parseJsonBytes32(json, ".blackBox.attestationHash")
            );
        }
    }
}
