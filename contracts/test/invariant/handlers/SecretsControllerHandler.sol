// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.30;

import {ClusterRegistry} from "../../../src/ClusterRegistry.sol";
import {SecretsController} from "../../../src/SecretsController.sol";
import {IClusterRegistry} from "../../../src/interfaces/IClusterRegistry.sol";
import {ISecretsController} from "../../../src/interfaces/ISecretsController.sol";
import {Test} from "../../utils/Test.sol";

/// @notice Drives a SecretsController (and the membership of its one cluster) with random
/// actions from a few actors, and keeps a model of what each secret's delegations must be.
contract SecretsControllerHandler is Test {
    struct ModelDelegation {
        bool granted;
        uint64 expiresAt;
    }

    SecretsController public immutable controller;
    ClusterRegistry public immutable registry;
    address public immutable governance;
    uint32 public immutable clusterId;
    bytes private _ek;

    address[] private _actors;
    uint32[] private _members;

    /// @dev Model: secret id => actor => delegation, cleared by ownership transfer.
    mapping(uint256 => mapping(address => ModelDelegation)) private _model;
    mapping(uint256 => address) public modelOwner;
    mapping(uint256 => bool) public modelShredded;

    uint256 public ghostCreated;
    /// @dev Set when a call by someone other than the owner changed delegations, or when an
    /// id was handed out twice.
    bool public ghostViolation;
    uint256 public ghostNonOwnerAttempts;

    constructor(
        SecretsController controller_,
        ClusterRegistry registry_,
        address governance_,
        uint32 clusterId_,
        uint32[] memory members,
        bytes memory ek
    ) {
        controller = controller_;
        registry = registry_;
        governance = governance_;
        clusterId = clusterId_;
        _members = members;
        _ek = ek;
        for (uint256 i = 1; i <= 4; ++i) {
            _actors.push(address(uint160(0xAC7000 + i)));
        }
    }

    // ---------------------------------------------------------------- actions

    function createSecret(uint256 actorSeed) external {
        address actor = _actor(actorSeed);
        if (!registry.isClusterActive(clusterId)) return;
        uint256 expectedId = controller.secretCount() + 1;
        vm.prank(actor);
        uint256 id = controller.createSecret(clusterId, 0x01, _ek);
        if (id != expectedId || modelOwner[id] != address(0)) ghostViolation = true;
        modelOwner[id] = actor;
        ++ghostCreated;
    }

    function addDelegate(uint256 secretSeed, uint256 delegateSeed, uint256 expirySeed) external {
        (uint256 id, bool ok) = _liveSecret(secretSeed);
        if (!ok) return;
        address delegate = _actor(delegateSeed);
        uint64 expiresAt =
            expirySeed % 3 == 0 ? 0 : uint64(block.timestamp + bound(expirySeed, 1, 10 days));
        vm.prank(modelOwner[id]);
        controller.addDelegate(id, delegate, expiresAt);
        _model[id][delegate] = ModelDelegation({granted: true, expiresAt: expiresAt});
    }

    function revokeDelegate(uint256 secretSeed, uint256 delegateSeed) external {
        (uint256 id, bool ok) = _liveSecret(secretSeed);
        if (!ok) return;
        address delegate = _actor(delegateSeed);
        if (!_model[id][delegate].granted) return;
        vm.prank(modelOwner[id]);
        controller.revokeDelegate(id, delegate);
        delete _model[id][delegate];
    }

    /// @dev Anyone but the owner tries to change delegations; must never succeed.
    function strangerChangesDelegates(uint256 secretSeed, uint256 actorSeed, bool revoke) external {
        if (ghostCreated == 0) return;
        uint256 id = bound(secretSeed, 1, ghostCreated);
        address actor = _actor(actorSeed);
        if (actor == modelOwner[id]) return;
        ++ghostNonOwnerAttempts;
        vm.prank(actor);
        if (revoke) {
            try controller.revokeDelegate(id, actor) {
                ghostViolation = true;
            } catch {}
        } else {
            try controller.addDelegate(id, actor, 0) {
                ghostViolation = true;
            } catch {}
        }
    }

    function transferOwnership(uint256 secretSeed, uint256 newOwnerSeed) external {
        (uint256 id, bool ok) = _liveSecret(secretSeed);
        if (!ok) return;
        address newOwner = _actor(newOwnerSeed);
        vm.prank(modelOwner[id]);
        controller.transferSecretOwnership(id, newOwner);
        vm.prank(newOwner);
        controller.acceptSecretOwnership(id);
        modelOwner[id] = newOwner;
        for (uint256 i = 0; i < _actors.length; ++i) {
            delete _model[id][_actors[i]];
        }
    }

    function shred(uint256 secretSeed) external {
        (uint256 id, bool ok) = _liveSecret(secretSeed);
        if (!ok) return;
        vm.prank(modelOwner[id]);
        controller.shred(id);
        modelShredded[id] = true;
    }

    function warp(uint256 secondsSeed) external {
        vm.warp(block.timestamp + bound(secondsSeed, 1, 3 days));
    }

    function memberLeaves(uint256 memberSeed) external {
        // Rare, or the cluster would be dead for most of every run.
        if (memberSeed % 16 != 0) return;
        memberSeed /= 16;
        uint32 nodeId = _members[bound(memberSeed, 0, _members.length - 1)];
        if (registry.node(nodeId).status != IClusterRegistry.NodeStatus.Active) return;
        vm.prank(registry.node(nodeId).operator);
        registry.leave(nodeId);
    }

    function toggleCluster() external {
        vm.startPrank(governance);
        if (registry.isClusterActive(clusterId)) {
            registry.deactivateCluster(clusterId);
        } else {
            try registry.activateCluster(clusterId) {} catch {}
        }
        vm.stopPrank();
    }

    // ---------------------------------------------------------------- model queries

    function actors() external view returns (address[] memory) {
        return _actors;
    }

    function modelDelegation(uint256 id, address account)
        external
        view
        returns (bool granted, uint64 expiresAt)
    {
        ModelDelegation memory d = _model[id][account];
        return (d.granted, d.expiresAt);
    }

    /// @dev What isAuthorized must answer, from the model and the registry.
    function modelAuthorized(uint256 id, address account) external view returns (bool) {
        if (account == address(0) || modelOwner[id] == address(0) || modelShredded[id]) {
            return false;
        }
        if (!registry.isClusterActive(clusterId)) return false;
        if (account == modelOwner[id]) return true;
        ModelDelegation memory d = _model[id][account];
        return d.granted && (d.expiresAt == 0 || block.timestamp < d.expiresAt);
    }

    // ---------------------------------------------------------------- helpers

    function _actor(uint256 seed) private view returns (address) {
        return _actors[seed % _actors.length];
    }

    function _liveSecret(uint256 seed) private view returns (uint256 id, bool ok) {
        if (ghostCreated == 0) return (0, false);
        id = bound(seed, 1, ghostCreated);
        ok = !modelShredded[id];
        // Keep the secret in the same state the contract has.
        if (ok) {
            ok = controller.secret(id).state == ISecretsController.SecretState.Active;
        }
    }
}
