// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.30;

import {SecretsController} from "../src/SecretsController.sol";
import {IClusterRegistry} from "../src/interfaces/IClusterRegistry.sol";
import {ISecretsController} from "../src/interfaces/ISecretsController.sol";
import {CiferFixture} from "./utils/CiferFixture.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @dev A minimal smart account: forwards any call from its owner.
contract SmartAccount {
    address private immutable _owner;

    constructor(address owner_) {
        _owner = owner_;
    }

    function execute(address target, bytes calldata data) external payable returns (bytes memory) {
        require(msg.sender == _owner); // test helper only
        (bool ok, bytes memory ret) = target.call{value: msg.value}(data);
        if (!ok) {
            assembly {
                revert(add(ret, 0x20), mload(ret))
            }
        }
        return ret;
    }
}

/// @dev Rejects every ether transfer.
contract EtherRejecter {
    receive() external payable {
        revert();
    }
}

contract SecretsControllerTest is CiferFixture {
    uint256 internal constant START = 1_700_000_000;

    function setUp() public override {
        super.setUp();
        vm.warp(START);
    }

    // ---------------------------------------------------------------- constructor

    function test_constructor_setsRegistryAndAdmin() public view {
        assertEq(address(controller.clusterRegistry()), address(registry));
        assertEq(controller.owner(), admin);
        assertEq(controller.secretCount(), 0);
        assertEq(controller.creationFee(), 0);
    }

    function test_constructor_revertsIfRegistryZero() public {
        vm.expectRevert(ISecretsController.SecretsControllerInvalidClusterRegistry.selector);
        new SecretsController(admin, IClusterRegistry(address(0)));
    }

    // ---------------------------------------------------------------- createSecret

    function test_createSecret_recordsSecret() public {
        uint256 id = createSecretAs(alice);
        assertEq(id, 1);
        assertEq(controller.secretCount(), 1);
        ISecretsController.Secret memory s = controller.secret(id);
        assertEq(s.owner, alice);
        assertEq(uint256(s.clusterId), uint256(clusterId));
        assertTrue(s.state == ISecretsController.SecretState.Active);
        assertEq(uint256(s.suite), uint256(SUITE_MLKEM768));
        assertEq(uint256(s.delegateEpoch), 0);
        assertEq(s.publicKeyHash, keccak256(ek));
        assertEq(s.pendingOwner, address(0));
        assertTrue(controller.isAuthorized(id, alice));
    }

    function test_createSecret_emitsSecretCreated() public {
        vm.expectEmit(address(controller));
        emit ISecretsController.SecretCreated(
            1, alice, clusterId, SUITE_MLKEM768, keccak256(ek), ek
        );
        createSecretAs(alice);
    }

    function test_createSecret_idsAreSequentialAndNeverReused() public {
        uint256 first = createSecretAs(alice);
        vm.prank(alice);
        controller.shred(first);
        uint256 second = createSecretAs(bob);
        assertEq(first, 1);
        assertEq(second, 2);
        assertEq(controller.secret(first).owner, alice);
    }

    function test_createSecret_acceptsK256Suite() public {
        bytes memory point = pseudoRandomBytes(7, 33);
        point[0] = 0x03;
        vm.prank(alice);
        uint256 id = controller.createSecret(clusterId, SUITE_K256_TECIES, point);
        assertEq(uint256(controller.secret(id).suite), uint256(SUITE_K256_TECIES));
        assertEq(controller.secret(id).publicKeyHash, keccak256(point));
    }

    function test_createSecret_acceptsHybridSuite() public {
        bytes memory point = pseudoRandomBytes(7, 33);
        point[0] = 0x02;
        bytes memory key = bytes.concat(ek, point);
        vm.prank(alice);
        uint256 id = controller.createSecret(clusterId, SUITE_HYBRID, key);
        assertEq(controller.secret(id).publicKeyHash, keccak256(key));
    }

    function test_createSecret_revertsIfSuiteUnsupported() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                ISecretsController.SecretsControllerUnsupportedSuite.selector, uint8(0)
            )
        );
        controller.createSecret(clusterId, 0, ek);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISecretsController.SecretsControllerUnsupportedSuite.selector, uint8(4)
            )
        );
        controller.createSecret(clusterId, 4, ek);
    }

    function test_createSecret_revertsIfKeyLengthWrong() public {
        bytes memory shortKey = pseudoRandomBytes(2, EK_LENGTH - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISecretsController.SecretsControllerInvalidPublicKey.selector,
                SUITE_MLKEM768,
                EK_LENGTH - 1
            )
        );
        controller.createSecret(clusterId, SUITE_MLKEM768, shortKey);
    }

    function test_createSecret_revertsIfPointPrefixInvalid() public {
        bytes memory point = pseudoRandomBytes(7, 33);
        point[0] = 0x04;
        vm.expectRevert(
            abi.encodeWithSelector(
                ISecretsController.SecretsControllerInvalidPublicKey.selector,
                SUITE_K256_TECIES,
                uint256(33)
            )
        );
        controller.createSecret(clusterId, SUITE_K256_TECIES, point);

        vm.expectRevert(
            abi.encodeWithSelector(
                ISecretsController.SecretsControllerInvalidPublicKey.selector,
                SUITE_HYBRID,
                EK_LENGTH + 33
            )
        );
        controller.createSecret(clusterId, SUITE_HYBRID, bytes.concat(ek, point));
    }

    function test_createSecret_revertsIfClusterUnknown() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                ISecretsController.SecretsControllerClusterNotActive.selector, uint32(99)
            )
        );
        controller.createSecret(99, SUITE_MLKEM768, ek);
    }

    function test_createSecret_revertsIfClusterInactive() public {
        vm.prank(governance);
        registry.deactivateCluster(clusterId);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISecretsController.SecretsControllerClusterNotActive.selector, clusterId
            )
        );
        controller.createSecret(clusterId, SUITE_MLKEM768, ek);
    }

    function test_createSecret_revertsIfFeeIncorrect() public {
        vm.deal(alice, 1 ether);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(ISecretsController.SecretsControllerIncorrectFee.selector, 0, 1)
        );
        controller.createSecret{value: 1}(clusterId, SUITE_MLKEM768, ek);

        vm.prank(admin);
        controller.setCreationFee(0.01 ether);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISecretsController.SecretsControllerIncorrectFee.selector, 0.01 ether, 0
            )
        );
        controller.createSecret(clusterId, SUITE_MLKEM768, ek);
    }

    function test_createSecret_chargesFee() public {
        vm.prank(admin);
        controller.setCreationFee(0.01 ether);
        vm.deal(alice, 1 ether);
        vm.prank(alice);
        controller.createSecret{value: 0.01 ether}(clusterId, SUITE_MLKEM768, ek);
        assertEq(address(controller).balance, 0.01 ether);
    }

    function test_createSecret_contractAccountOwnsAndDelegates() public {
        SmartAccount account = new SmartAccount(alice);
        vm.startPrank(alice);
        bytes memory ret = account.execute(
            address(controller),
            abi.encodeCall(ISecretsController.createSecret, (clusterId, SUITE_MLKEM768, ek))
        );
        uint256 id = abi.decode(ret, (uint256));
        account.execute(
            address(controller), abi.encodeCall(ISecretsController.addDelegate, (id, bob, 0))
        );
        vm.stopPrank();
        assertEq(controller.secret(id).owner, address(account));
        assertTrue(controller.isAuthorized(id, address(account)));
        assertTrue(controller.isAuthorized(id, bob));
        assertFalse(controller.isAuthorized(id, alice));
    }

    // ---------------------------------------------------------------- ownership transfer

    function test_transferSecretOwnership_setsPendingOwner() public {
        uint256 id = createSecretAs(alice);
        vm.expectEmit(address(controller));
        emit ISecretsController.SecretOwnershipTransferStarted(id, alice, bob);
        vm.prank(alice);
        controller.transferSecretOwnership(id, bob);
        assertEq(controller.secret(id).pendingOwner, bob);
        assertEq(controller.secret(id).owner, alice);
        assertFalse(controller.isAuthorized(id, bob));
    }

    function test_transferSecretOwnership_zeroCancels() public {
        uint256 id = createSecretAs(alice);
        vm.startPrank(alice);
        controller.transferSecretOwnership(id, bob);
        controller.transferSecretOwnership(id, address(0));
        vm.stopPrank();
        vm.prank(bob);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISecretsController.SecretsControllerNotPendingOwner.selector, id, bob
            )
        );
        controller.acceptSecretOwnership(id);
    }

    function test_transferSecretOwnership_revertsIfNotOwner() public {
        uint256 id = createSecretAs(alice);
        vm.prank(bob);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISecretsController.SecretsControllerUnauthorizedAccount.selector, id, bob
            )
        );
        controller.transferSecretOwnership(id, bob);
    }

    function test_transferSecretOwnership_revertsIfSecretUnknown() public {
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(ISecretsController.SecretsControllerSecretNotActive.selector, 1)
        );
        controller.transferSecretOwnership(1, bob);
    }

    function test_acceptSecretOwnership_transfersAndVoidsDelegates() public {
        uint256 id = createSecretAs(alice);
        vm.startPrank(alice);
        controller.addDelegate(id, carol, 0);
        controller.transferSecretOwnership(id, bob);
        vm.stopPrank();

        vm.expectEmit(address(controller));
        emit ISecretsController.SecretOwnershipTransferred(id, alice, bob);
        vm.prank(bob);
        controller.acceptSecretOwnership(id);

        ISecretsController.Secret memory s = controller.secret(id);
        assertEq(s.owner, bob);
        assertEq(s.pendingOwner, address(0));
        assertEq(uint256(s.delegateEpoch), 1);
        assertTrue(controller.isAuthorized(id, bob));
        assertFalse(controller.isAuthorized(id, alice));
        assertFalse(controller.isAuthorized(id, carol));
        (bool isDelegate,) = controller.delegation(id, carol);
        assertFalse(isDelegate);
    }

    function test_acceptSecretOwnership_revertsIfNotPendingOwner() public {
        uint256 id = createSecretAs(alice);
        vm.prank(alice);
        controller.transferSecretOwnership(id, bob);
        vm.prank(carol);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISecretsController.SecretsControllerNotPendingOwner.selector, id, carol
            )
        );
        controller.acceptSecretOwnership(id);
    }

    function test_acceptSecretOwnership_revertsIfShredded() public {
        uint256 id = createSecretAs(alice);
        vm.startPrank(alice);
        controller.transferSecretOwnership(id, bob);
        controller.shred(id);
        vm.stopPrank();
        vm.prank(bob);
        vm.expectRevert(
            abi.encodeWithSelector(ISecretsController.SecretsControllerSecretNotActive.selector, id)
        );
        controller.acceptSecretOwnership(id);
    }

    // ---------------------------------------------------------------- delegates

    function test_addDelegate_authorizesDelegate() public {
        uint256 id = createSecretAs(alice);
        vm.expectEmit(address(controller));
        emit ISecretsController.DelegateAdded(id, bob, 0);
        vm.prank(alice);
        controller.addDelegate(id, bob, 0);
        assertTrue(controller.isAuthorized(id, bob));
        (bool isDelegate, uint64 expiresAt) = controller.delegation(id, bob);
        assertTrue(isDelegate);
        assertEq(uint256(expiresAt), 0);
    }

    function test_addDelegate_expiresAtTimestamp() public {
        uint256 id = createSecretAs(alice);
        uint64 expiresAt = uint64(START + 1 days);
        vm.prank(alice);
        controller.addDelegate(id, bob, expiresAt);
        vm.warp(expiresAt - 1);
        assertTrue(controller.isAuthorized(id, bob));
        vm.warp(expiresAt);
        assertFalse(controller.isAuthorized(id, bob));
    }

    function test_addDelegate_updatesExpiry() public {
        uint256 id = createSecretAs(alice);
        vm.startPrank(alice);
        controller.addDelegate(id, bob, uint64(START + 1));
        controller.addDelegate(id, bob, 0);
        vm.stopPrank();
        vm.warp(START + 100 days);
        assertTrue(controller.isAuthorized(id, bob));
    }

    function test_addDelegate_revertsIfNotOwner() public {
        uint256 id = createSecretAs(alice);
        vm.prank(alice);
        controller.addDelegate(id, bob, 0);
        // A delegate cannot delegate further.
        vm.prank(bob);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISecretsController.SecretsControllerUnauthorizedAccount.selector, id, bob
            )
        );
        controller.addDelegate(id, carol, 0);
    }

    function test_addDelegate_revertsIfDelegateZero() public {
        uint256 id = createSecretAs(alice);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISecretsController.SecretsControllerInvalidDelegate.selector, address(0)
            )
        );
        controller.addDelegate(id, address(0), 0);
    }

    function test_addDelegate_revertsIfExpiryNotInFuture() public {
        uint256 id = createSecretAs(alice);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISecretsController.SecretsControllerInvalidExpiry.selector, uint64(START)
            )
        );
        controller.addDelegate(id, bob, uint64(START));
    }

    function test_addDelegate_revertsIfShredded() public {
        uint256 id = createSecretAs(alice);
        vm.startPrank(alice);
        controller.shred(id);
        vm.expectRevert(
            abi.encodeWithSelector(ISecretsController.SecretsControllerSecretNotActive.selector, id)
        );
        controller.addDelegate(id, bob, 0);
        vm.stopPrank();
    }

    function test_revokeDelegate_removesDelegate() public {
        uint256 id = createSecretAs(alice);
        vm.prank(alice);
        controller.addDelegate(id, bob, 0);
        vm.expectEmit(address(controller));
        emit ISecretsController.DelegateRevoked(id, bob);
        vm.prank(alice);
        controller.revokeDelegate(id, bob);
        assertFalse(controller.isAuthorized(id, bob));
        (bool isDelegate,) = controller.delegation(id, bob);
        assertFalse(isDelegate);
    }

    function test_revokeDelegate_worksOnExpiredDelegate() public {
        uint256 id = createSecretAs(alice);
        vm.prank(alice);
        controller.addDelegate(id, bob, uint64(START + 10));
        vm.warp(START + 20);
        vm.prank(alice);
        controller.revokeDelegate(id, bob);
        (bool isDelegate,) = controller.delegation(id, bob);
        assertFalse(isDelegate);
    }

    function test_revokeDelegate_revertsIfNotOwner() public {
        uint256 id = createSecretAs(alice);
        vm.prank(alice);
        controller.addDelegate(id, bob, 0);
        vm.prank(bob);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISecretsController.SecretsControllerUnauthorizedAccount.selector, id, bob
            )
        );
        controller.revokeDelegate(id, bob);
    }

    function test_revokeDelegate_revertsIfNotDelegate() public {
        uint256 id = createSecretAs(alice);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISecretsController.SecretsControllerNotDelegate.selector, id, bob
            )
        );
        controller.revokeDelegate(id, bob);
    }

    function test_revokeDelegate_revertsIfDelegationVoidedByTransfer() public {
        uint256 id = createSecretAs(alice);
        vm.startPrank(alice);
        controller.addDelegate(id, carol, 0);
        controller.transferSecretOwnership(id, bob);
        vm.stopPrank();
        vm.startPrank(bob);
        controller.acceptSecretOwnership(id);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISecretsController.SecretsControllerNotDelegate.selector, id, carol
            )
        );
        controller.revokeDelegate(id, carol);
        vm.stopPrank();
    }

    function test_revokeDelegate_revertsIfShredded() public {
        uint256 id = createSecretAs(alice);
        vm.startPrank(alice);
        controller.addDelegate(id, bob, 0);
        controller.shred(id);
        vm.expectRevert(
            abi.encodeWithSelector(ISecretsController.SecretsControllerSecretNotActive.selector, id)
        );
        controller.revokeDelegate(id, bob);
        vm.stopPrank();
    }

    // ---------------------------------------------------------------- shred

    function test_shred_authorizesNobody() public {
        uint256 id = createSecretAs(alice);
        vm.startPrank(alice);
        controller.addDelegate(id, bob, 0);
        controller.transferSecretOwnership(id, carol);
        vm.expectEmit(address(controller));
        emit ISecretsController.SecretShredded(id, alice);
        controller.shred(id);
        vm.stopPrank();
        ISecretsController.Secret memory s = controller.secret(id);
        assertTrue(s.state == ISecretsController.SecretState.Shredded);
        assertEq(s.pendingOwner, address(0));
        assertFalse(controller.isAuthorized(id, alice));
        assertFalse(controller.isAuthorized(id, bob));
    }

    function test_shred_revertsIfNotOwner() public {
        uint256 id = createSecretAs(alice);
        vm.prank(bob);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISecretsController.SecretsControllerUnauthorizedAccount.selector, id, bob
            )
        );
        controller.shred(id);
    }

    function test_shred_revertsIfAlreadyShredded() public {
        uint256 id = createSecretAs(alice);
        vm.startPrank(alice);
        controller.shred(id);
        vm.expectRevert(
            abi.encodeWithSelector(ISecretsController.SecretsControllerSecretNotActive.selector, id)
        );
        controller.shred(id);
        vm.stopPrank();
    }

    // ---------------------------------------------------------------- isAuthorized

    function test_isAuthorized_falseForZeroAddress() public {
        uint256 id = createSecretAs(alice);
        assertFalse(controller.isAuthorized(id, address(0)));
    }

    function test_isAuthorized_falseForUnknownSecret() public view {
        assertFalse(controller.isAuthorized(1, alice));
        assertFalse(controller.isAuthorized(0, address(0)));
    }

    function test_isAuthorized_falseWhileClusterInactive() public {
        uint256 id = createSecretAs(alice);
        vm.prank(alice);
        controller.addDelegate(id, bob, 0);
        vm.prank(operatorOf(0));
        registry.leave(memberIds[0]);
        assertFalse(controller.isAuthorized(id, alice));
        assertFalse(controller.isAuthorized(id, bob));
        // Governance may reactivate: 4 of 5 members remain, threshold 3.
        vm.prank(governance);
        registry.activateCluster(clusterId);
        assertTrue(controller.isAuthorized(id, alice));
        assertTrue(controller.isAuthorized(id, bob));
    }

    // ---------------------------------------------------------------- audit anchors

    function test_anchorAuditRoot_recordsAnchor() public {
        vm.roll(1234);
        vm.expectEmit(address(controller));
        emit ISecretsController.AuditRootAnchored(blackBoxAccount, 10, keccak256("root"));
        vm.prank(blackBoxAccount);
        controller.anchorAuditRoot(keccak256("root"), 10);
        ISecretsController.AuditAnchor memory a = controller.auditAnchor(blackBoxAccount);
        assertEq(a.root, keccak256("root"));
        assertEq(uint256(a.count), 10);
        assertEq(uint256(a.blockNumber), 1234);
    }

    function test_anchorAuditRoot_revertsIfNotBlackBox() public {
        vm.prank(blackBoxSigner);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISecretsController.SecretsControllerNotBlackBox.selector, blackBoxSigner
            )
        );
        controller.anchorAuditRoot(keccak256("root"), 1);

        vm.prank(governance);
        registry.removeBlackBox(blackBoxAccount);
        vm.prank(blackBoxAccount);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISecretsController.SecretsControllerNotBlackBox.selector, blackBoxAccount
            )
        );
        controller.anchorAuditRoot(keccak256("root"), 1);
    }

    function test_anchorAuditRoot_revertsIfRootZero() public {
        vm.prank(blackBoxAccount);
        vm.expectRevert(ISecretsController.SecretsControllerInvalidAuditRoot.selector);
        controller.anchorAuditRoot(bytes32(0), 1);
    }

    function test_anchorAuditRoot_revertsIfCountNotIncreasing() public {
        vm.startPrank(blackBoxAccount);
        controller.anchorAuditRoot(keccak256("a"), 5);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISecretsController.SecretsControllerStaleAuditCount.selector, 5, 5
            )
        );
        controller.anchorAuditRoot(keccak256("b"), 5);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISecretsController.SecretsControllerStaleAuditCount.selector, 5, 0
            )
        );
        controller.anchorAuditRoot(keccak256("b"), 0);
        vm.stopPrank();
    }

    // ---------------------------------------------------------------- admin and fees

    function test_setCreationFee_updatesFee() public {
        vm.expectEmit(address(controller));
        emit ISecretsController.CreationFeeUpdated(0, 5);
        vm.prank(admin);
        controller.setCreationFee(5);
        assertEq(controller.creationFee(), 5);
    }

    function test_setCreationFee_revertsIfNotAdmin() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        controller.setCreationFee(5);
    }

    function test_withdrawFees_sendsBalance() public {
        vm.prank(admin);
        controller.setCreationFee(1 ether);
        vm.deal(alice, 1 ether);
        vm.prank(alice);
        controller.createSecret{value: 1 ether}(clusterId, SUITE_MLKEM768, ek);
        vm.expectEmit(address(controller));
        emit ISecretsController.FeesWithdrawn(carol, 1 ether);
        vm.prank(admin);
        controller.withdrawFees(payable(carol));
        assertEq(carol.balance, 1 ether);
        assertEq(address(controller).balance, 0);
    }

    function test_withdrawFees_revertsIfNotAdmin() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        controller.withdrawFees(payable(alice));
    }

    function test_withdrawFees_revertsIfRecipientZero() public {
        vm.prank(admin);
        vm.expectRevert(ISecretsController.SecretsControllerInvalidRecipient.selector);
        controller.withdrawFees(payable(address(0)));
    }

    function test_withdrawFees_revertsIfTransferFails() public {
        EtherRejecter rejecter = new EtherRejecter();
        vm.deal(address(controller), 3);
        vm.prank(admin);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISecretsController.SecretsControllerWithdrawalFailed.selector, address(rejecter), 3
            )
        );
        controller.withdrawFees(payable(address(rejecter)));
    }

    function test_renounceOwnership_reverts() public {
        vm.prank(admin);
        vm.expectRevert(ISecretsController.SecretsControllerRenounceOwnershipDisabled.selector);
        controller.renounceOwnership();
    }

    function test_transferOwnership_isTwoStep() public {
        vm.prank(admin);
        controller.transferOwnership(bob);
        assertEq(controller.owner(), admin);
        vm.prank(bob);
        controller.acceptOwnership();
        assertEq(controller.owner(), bob);
    }

    // ---------------------------------------------------------------- EIP-712

    function test_hashDecryptRequest_matchesEip712() public view {
        uint256 requesterKey = 0xA11CE5;
        address requester = vm.addr(requesterKey);
        ISecretsController.DecryptRequest memory request = ISecretsController.DecryptRequest({
            secretId: 7,
            requester: requester,
            blockNumber: 1042,
            envelopeHash: keccak256("envelope"),
            responseKeyHash: keccak256("response key"),
            nonce: keccak256("nonce")
        });
        bytes32 domainSeparator = keccak256(
            abi.encode(
                keccak256(
                    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
                ),
                keccak256("CIFER"),
                keccak256("1"),
                block.chainid,
                address(controller)
            )
        );
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256(
                    "DecryptRequest(uint256 secretId,address requester,uint64 blockNumber,bytes32 envelopeHash,bytes32 responseKeyHash,bytes32 nonce)"
                ),
                request.secretId,
                request.requester,
                request.blockNumber,
                request.envelopeHash,
                request.responseKeyHash,
                request.nonce
            )
        );
        bytes32 expected = keccak256(abi.encodePacked(hex"1901", domainSeparator, structHash));
        bytes32 digest = controller.hashDecryptRequest(request);
        assertEq(digest, expected);

        (uint8 v, bytes32 r, bytes32 s) = vm.sign(requesterKey, digest);
        assertEq(ecrecover(digest, v, r, s), requester);
    }

    // ---------------------------------------------------------------- fuzz

    function testFuzz_addDelegate_expiryDecidesAuthorization(uint64 expiresAt, uint256 elapsed)
        public
    {
        expiresAt = uint64(bound(expiresAt, START + 1, type(uint64).max));
        elapsed = bound(elapsed, 0, uint256(type(uint64).max) - START);
        uint256 id = createSecretAs(alice);
        vm.prank(alice);
        controller.addDelegate(id, bob, expiresAt);
        vm.warp(START + elapsed);
        assertEq(controller.isAuthorized(id, bob), START + elapsed < expiresAt);
    }

    function testFuzz_isAuthorized_strangersNeverAuthorized(address stranger) public {
        vm.assume(stranger != alice && stranger != bob);
        uint256 id = createSecretAs(alice);
        vm.prank(alice);
        controller.addDelegate(id, bob, 0);
        assertFalse(controller.isAuthorized(id, stranger));
    }

    function testFuzz_createSecret_rejectsWrongKeyLength(uint256 length) public {
        length = bound(length, 0, 2 * EK_LENGTH);
        vm.assume(length != EK_LENGTH);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISecretsController.SecretsControllerInvalidPublicKey.selector,
                SUITE_MLKEM768,
                length
            )
        );
        controller.createSecret(clusterId, SUITE_MLKEM768, new bytes(length));
    }

    function testFuzz_createSecret_rejectsUnknownSuites(uint8 suite) public {
        vm.assume(suite == 0 || suite > SUITE_HYBRID);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISecretsController.SecretsControllerUnsupportedSuite.selector, suite
            )
        );
        controller.createSecret(clusterId, suite, ek);
    }

    function testFuzz_createSecret_idsAreSequential(uint8 count) public {
        count = uint8(bound(count, 1, 20));
        for (uint256 i = 1; i <= count; ++i) {
            assertEq(createSecretAs(address(uint160(0x1000 + i))), i);
        }
        assertEq(controller.secretCount(), count);
    }
}
