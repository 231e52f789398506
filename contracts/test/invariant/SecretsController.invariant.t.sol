// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.30;

import {ISecretsController} from "../../src/interfaces/ISecretsController.sol";
import {CiferFixture} from "../utils/CiferFixture.sol";
import {SecretsControllerHandler} from "./handlers/SecretsControllerHandler.sol";

contract SecretsControllerInvariantTest is CiferFixture {
    SecretsControllerHandler internal handler;

    function setUp() public override {
        super.setUp();
        vm.warp(1_700_000_000);
        handler = new SecretsControllerHandler(
            controller, registry, governance, clusterId, memberIds, ek
        );
        bytes4[] memory selectors = new bytes4[](9);
        selectors[0] = SecretsControllerHandler.createSecret.selector;
        selectors[1] = SecretsControllerHandler.addDelegate.selector;
        selectors[2] = SecretsControllerHandler.revokeDelegate.selector;
        selectors[3] = SecretsControllerHandler.strangerChangesDelegates.selector;
        selectors[4] = SecretsControllerHandler.transferOwnership.selector;
        selectors[5] = SecretsControllerHandler.shred.selector;
        selectors[6] = SecretsControllerHandler.warp.selector;
        selectors[7] = SecretsControllerHandler.memberLeaves.selector;
        selectors[8] = SecretsControllerHandler.toggleCluster.selector;
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    /// @dev isAuthorized agrees with the model for every secret and actor. This subsumes:
    /// revoked or expired delegates are never authorized, shredded secrets authorize nobody,
    /// inactive clusters authorize nobody.
    function invariant_isAuthorizedMatchesModel() public view {
        address[] memory actors = handler.actors();
        uint256 count = controller.secretCount();
        for (uint256 id = 0; id <= count + 1; ++id) {
            for (uint256 i = 0; i < actors.length; ++i) {
                assertEq(
                    controller.isAuthorized(id, actors[i]), handler.modelAuthorized(id, actors[i])
                );
            }
        }
    }

    function invariant_revokedOrExpiredDelegateNeverAuthorized() public view {
        address[] memory actors = handler.actors();
        uint256 count = controller.secretCount();
        for (uint256 id = 1; id <= count; ++id) {
            address owner = controller.secret(id).owner;
            for (uint256 i = 0; i < actors.length; ++i) {
                if (actors[i] == owner) continue;
                (bool granted, uint64 expiresAt) = handler.modelDelegation(id, actors[i]);
                if (!granted || (expiresAt != 0 && block.timestamp >= expiresAt)) {
                    assertFalse(controller.isAuthorized(id, actors[i]));
                }
            }
        }
    }

    function invariant_zeroAddressNeverAuthorized() public view {
        uint256 count = controller.secretCount();
        for (uint256 id = 0; id <= count + 1; ++id) {
            assertFalse(controller.isAuthorized(id, address(0)));
        }
    }

    function invariant_shreddedSecretAuthorizesNobody() public view {
        address[] memory actors = handler.actors();
        uint256 count = controller.secretCount();
        for (uint256 id = 1; id <= count; ++id) {
            ISecretsController.Secret memory s = controller.secret(id);
            if (s.state != ISecretsController.SecretState.Shredded) continue;
            assertFalse(controller.isAuthorized(id, s.owner));
            for (uint256 i = 0; i < actors.length; ++i) {
                assertFalse(controller.isAuthorized(id, actors[i]));
            }
        }
    }

    /// @dev Delegations on chain are exactly those the owners made: no other caller changed
    /// them, and every attempt by a non-owner reverted.
    function invariant_onlyOwnerChangesDelegates() public view {
        assertFalse(handler.ghostViolation(), "non-owner changed delegates or id reused");
        address[] memory actors = handler.actors();
        uint256 count = controller.secretCount();
        for (uint256 id = 1; id <= count; ++id) {
            if (controller.secret(id).state != ISecretsController.SecretState.Active) continue;
            for (uint256 i = 0; i < actors.length; ++i) {
                (bool isDelegate, uint64 expiresAt) = controller.delegation(id, actors[i]);
                (bool granted, uint64 modelExpiresAt) = handler.modelDelegation(id, actors[i]);
                assertEq(isDelegate, granted);
                assertEq(uint256(expiresAt), uint256(modelExpiresAt));
            }
        }
    }

    function invariant_idsAreUniqueAndSequential() public view {
        assertFalse(handler.ghostViolation(), "non-owner changed delegates or id reused");
        uint256 count = controller.secretCount();
        assertEq(count, handler.ghostCreated());
        for (uint256 id = 1; id <= count; ++id) {
            assertEq(controller.secret(id).owner, handler.modelOwner(id));
            assertTrue(controller.secret(id).state != ISecretsController.SecretState.None);
        }
        assertTrue(controller.secret(count + 1).state == ISecretsController.SecretState.None);
    }
}
