//! The handshake matrix: every role type alone and together, for both suites,
//! asserting the exact verified role set on each side.

mod support;

use jadeite_security::{
    CipherSuite, Credentials, HandshakeError, SecurityEvent, UnauthenticatedPolicy,
};
use support::*;

fn for_each_suite(test: impl Fn(CipherSuite)) {
    for suite in CipherSuite::ALL {
        test(suite);
    }
}

fn pair(
    suite: CipherSuite,
    initiator: Credentials,
    responder: Credentials,
    policy: UnauthenticatedPolicy,
) -> Outcome {
    run(
        &config_with(initiator, &[suite], policy),
        &config_with(responder, &[suite], policy),
    )
}

#[test]
fn no_roles_is_refused_by_default() {
    for_each_suite(|suite| {
        let outcome = pair(
            suite,
            Credentials::new(),
            Credentials::new(),
            UnauthenticatedPolicy::Refuse,
        );
        assert_eq!(
            outcome.responder.unwrap_err(),
            HandshakeError::NoVerifiedRole
        );
    });
}

#[test]
fn no_roles_accepted_as_unauthenticated_when_policy_allows() {
    for_each_suite(|suite| {
        let (i, r) = pair(
            suite,
            Credentials::new(),
            Credentials::new(),
            UnauthenticatedPolicy::Accept,
        )
        .both();
        assert!(i.peer_roles.is_empty() && r.peer_roles.is_empty());
        assert_eq!((i.suite, r.suite), (suite, suite));
    });
}

#[test]
fn shared_key_role_verifies_on_both_sides() {
    for_each_suite(|suite| {
        let creds = || Credentials::new().with_shared_key(role("inventory"), shared_key(7));
        let (i, r) = pair(suite, creds(), creds(), UnauthenticatedPolicy::Refuse).both();
        assert_eq!(i.peer_roles, roles(&["inventory"]));
        assert_eq!(r.peer_roles, roles(&["inventory"]));
    });
}

#[test]
fn password_role_verifies_on_both_sides() {
    for_each_suite(|suite| {
        let creds =
            || Credentials::new().with_password(role("logistics"), password("correct horse"));
        let outcome = pair(suite, creds(), creds(), UnauthenticatedPolicy::Refuse);
        assert!(outcome.initiator_events.is_empty() && outcome.responder_events.is_empty());
        let (i, r) = outcome.both();
        assert_eq!(i.peer_roles, roles(&["logistics"]));
        assert_eq!(r.peer_roles, roles(&["logistics"]));
    });
}

#[test]
fn x509_role_verifies_with_anchor_only() {
    let ca = ca("checkout CA");
    for_each_suite(|suite| {
        // The initiator proves `checkout`; the responder holds only the anchor.
        let initiator =
            Credentials::new().with_certificate(role("checkout"), certificate(&ca, "api"));
        let responder = Credentials::new().with_trust_anchor(role("checkout"), anchor(&ca));
        let (i, r) = pair(suite, initiator, responder, UnauthenticatedPolicy::Accept).both();
        assert_eq!(r.peer_roles, roles(&["checkout"]));
        assert!(i.peer_roles.is_empty(), "the responder proved nothing");
    });
}

#[test]
fn all_three_role_types_together() {
    let ca = ca("checkout CA");
    for_each_suite(|suite| {
        let creds = |name: &str| {
            Credentials::new()
                .with_shared_key(role("inventory"), shared_key(1))
                .with_password(role("logistics"), password("pw-logistics"))
                .with_certificate(role("checkout"), certificate(&ca, name))
                .with_trust_anchor(role("checkout"), anchor(&ca))
        };
        let (i, r) = pair(suite, creds("a"), creds("b"), UnauthenticatedPolicy::Refuse).both();
        let expected = roles(&["checkout", "inventory", "logistics"]);
        assert_eq!(i.peer_roles, expected);
        assert_eq!(r.peer_roles, expected);
    });
}

#[test]
fn three_passwords_one_differs() {
    for_each_suite(|suite| {
        let creds = |second: &str| {
            Credentials::new()
                .with_password(role("p1"), password("one"))
                .with_password(role("p2"), password(second))
                .with_password(role("p3"), password("three"))
        };
        let outcome = pair(
            suite,
            creds("two"),
            creds("TWO"),
            UnauthenticatedPolicy::Refuse,
        );
        let failed = vec![SecurityEvent::PasswordRoleFailed { role: role("p2") }];
        assert_eq!(outcome.initiator_events, failed);
        assert_eq!(outcome.responder_events, failed);
        let (i, r) = outcome.both();
        assert_eq!(i.peer_roles, roles(&["p1", "p3"]));
        assert_eq!(r.peer_roles, roles(&["p1", "p3"]));
    });
}

#[test]
fn only_common_password_roles_run() {
    // The initiator has two password roles, the responder one of them and one of its own.
    let initiator = Credentials::new()
        .with_password(role("a"), password("x"))
        .with_password(role("b"), password("y"));
    let responder = Credentials::new()
        .with_password(role("b"), password("y"))
        .with_password(role("c"), password("z"));
    let (i, r) = run(&config(initiator), &config(responder)).both();
    assert_eq!(i.peer_roles, roles(&["b"]));
    assert_eq!(r.peer_roles, roles(&["b"]));
}

#[test]
fn responder_preference_picks_the_suite() {
    let creds = || Credentials::new().with_shared_key(role("k"), shared_key(3));
    let initiator = config_with(creds(), &CipherSuite::ALL, UnauthenticatedPolicy::Refuse);
    let reversed = [CipherSuite::ALL[1], CipherSuite::ALL[0]];
    let responder = config_with(creds(), &reversed, UnauthenticatedPolicy::Refuse);
    let (i, r) = run(&initiator, &responder).both();
    assert_eq!(i.suite, reversed[0]);
    assert_eq!(r.suite, reversed[0]);
}

#[test]
fn no_common_suite_fails() {
    let creds = || Credentials::new().with_shared_key(role("k"), shared_key(3));
    let initiator = config_with(
        creds(),
        &CipherSuite::ALL[..1],
        UnauthenticatedPolicy::Refuse,
    );
    let responder = config_with(
        creds(),
        &CipherSuite::ALL[1..],
        UnauthenticatedPolicy::Refuse,
    );
    assert_eq!(
        run(&initiator, &responder).responder.unwrap_err(),
        HandshakeError::NoCommonSuite
    );
}

#[test]
fn established_sessions_talk_both_ways() {
    for_each_suite(|suite| {
        let creds = || Credentials::new().with_shared_key(role("k"), shared_key(9));
        let (mut i, mut r) = pair(suite, creds(), creds(), UnauthenticatedPolicy::Refuse).both();
        let t = now().monotonic;
        assert_delivers(&mut i.session, &mut r.session, b"hello responder", t);
        assert_delivers(&mut r.session, &mut i.session, b"hello initiator", t);
    });
}

fn assert_delivers(
    from: &mut jadeite_security::SecureSession,
    to: &mut jadeite_security::SecureSession,
    message: &[u8],
    t: std::time::Instant,
) {
    let mut packet = from.seal(b"route", message, t).expect("seal");
    match to.open(b"route", &mut packet, t).expect("open") {
        jadeite_security::Received::Application(data) => assert_eq!(data, message),
        other => panic!("unexpected {other:?}"),
    }
}
