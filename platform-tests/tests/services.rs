//! Service calls between platforms over TCP and WebSocket: every role type,
//! access rules checked before the method runs, role mapping, deadlines,
//! cancellation, panics, re-entrant chains, discovery and lost connections.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use jadeite::security::{
    CertificateIdentity, Credentials, Password, PlatformId, RoleTrustAnchor, SharedKey,
    UnauthenticatedPolicy,
};
use jadeite::service::ServiceInterface;
use jadeite::{
    CallContext, CallError, Component, ComponentContext, Platform, PlatformBuilder, RemoteFailure,
    Required, RoleMap, Scope, ServiceRef, service,
};
use platform_tests::faults::{Faults, FaultyTransport};
use platform_tests::*;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

#[path = "../../framework/security/tests/support/test_pki.rs"]
mod test_pki;

// ---------------------------------------------------------------------------
// Services under test
// ---------------------------------------------------------------------------

/// What a method saw of its caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Seen {
    caller: [u8; 16],
    local: bool,
    trusted: bool,
    roles: BTreeSet<String>,
    verified: BTreeSet<String>,
}

impl Seen {
    fn of(cx: &CallContext) -> Self {
        let names = |roles: &BTreeSet<jadeite::security::RoleName>| {
            roles.iter().map(|r| r.as_str().to_owned()).collect()
        };
        Self {
            caller: cx.caller_platform().0,
            local: cx.is_local(),
            trusted: cx.is_trusted(),
            roles: names(cx.roles()),
            verified: names(cx.verified_roles()),
        }
    }
}

#[service(roles = ["inventory"])]
trait Warehouse {
    async fn who(&self, cx: &CallContext) -> Seen;
}

#[service(roles = ["logistics"])]
trait Shipping {
    async fn who(&self, cx: &CallContext) -> Seen;
}

#[service(roles = ["checkout"])]
trait Payment {
    async fn who(&self, cx: &CallContext) -> Seen;
    /// Method rule replaces the trait's.
    #[roles("admin")]
    async fn refund(&self, cents: u64) -> u64;
    #[unrestricted]
    async fn currencies(&self) -> Vec<String>;
}

/// The default rule: trusted callers only, but one method is open.
#[service]
trait Desk {
    async fn who(&self, cx: &CallContext) -> Seen;
    #[unrestricted]
    async fn hours(&self) -> String;
}

#[service(roles = ["auditor"])]
trait Audit {
    async fn who(&self, cx: &CallContext) -> Seen;
}

/// Counts how often any method body ran: an access check that lets a call
/// through shows up here.
#[derive(Default)]
struct Probe {
    runs: AtomicUsize,
}

impl Probe {
    fn seen(&self, cx: &CallContext) -> Seen {
        self.runs.fetch_add(1, Ordering::SeqCst);
        Seen::of(cx)
    }
}

impl Component for Probe {}

impl Warehouse for Probe {
    async fn who(&self, cx: &CallContext) -> Seen {
        self.seen(cx)
    }
}

impl Shipping for Probe {
    async fn who(&self, cx: &CallContext) -> Seen {
        self.seen(cx)
    }
}

impl Payment for Probe {
    async fn who(&self, cx: &CallContext) -> Seen {
        self.seen(cx)
    }
    async fn refund(&self, cents: u64) -> u64 {
        self.runs.fetch_add(1, Ordering::SeqCst);
        cents
    }
    async fn currencies(&self) -> Vec<String> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        vec!["EUR".to_owned(), "CHF".to_owned()]
    }
}

impl Desk for Probe {
    async fn who(&self, cx: &CallContext) -> Seen {
        self.seen(cx)
    }
    async fn hours(&self) -> String {
        self.runs.fetch_add(1, Ordering::SeqCst);
        "9-17".to_owned()
    }
}

impl Audit for Probe {
    async fn who(&self, cx: &CallContext) -> Seen {
        self.seen(cx)
    }
}

/// A probe shared with the test, which reads its counter.
#[derive(Clone, Default)]
struct SharedProbe(Arc<Probe>);

impl Component for SharedProbe {}

macro_rules! delegate_who {
    ($($service:ident),*) => {$(
        impl $service for SharedProbe {
            async fn who(&self, cx: &CallContext) -> Seen {
                self.0.seen(cx)
            }
        }
    )*};
}
delegate_who!(Warehouse, Shipping, Audit);

impl Payment for SharedProbe {
    async fn who(&self, cx: &CallContext) -> Seen {
        self.0.seen(cx)
    }
    async fn refund(&self, cents: u64) -> u64 {
        Payment::refund(&*self.0, cents).await
    }
    async fn currencies(&self) -> Vec<String> {
        Payment::currencies(&*self.0).await
    }
}

impl Desk for SharedProbe {
    async fn who(&self, cx: &CallContext) -> Seen {
        self.0.seen(cx)
    }
    async fn hours(&self) -> String {
        Desk::hours(&*self.0).await
    }
}

/// Slow and failing methods, observed from outside.
#[service]
trait Slow {
    async fn sleep(&self, id: u64, ms: u64) -> u64;
    async fn explode(&self) -> u64;
}

#[derive(Default)]
struct Sleeper {
    started: Notify,
    /// Per call id: how often it started.
    runs: Mutex<Vec<u64>>,
    completed: AtomicUsize,
    dropped: AtomicUsize,
}

struct CountDrop<'a>(&'a AtomicUsize);

impl Drop for CountDrop<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Clone, Default)]
struct SharedSleeper(Arc<Sleeper>);

impl Component for SharedSleeper {}

impl Slow for SharedSleeper {
    async fn sleep(&self, id: u64, ms: u64) -> u64 {
        let sleeper = &self.0;
        sleeper.runs.lock().expect("lock").push(id);
        sleeper.started.notify_one();
        let _dropped = CountDrop(&sleeper.dropped);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        sleeper.completed.fetch_add(1, Ordering::SeqCst);
        id
    }

    async fn explode(&self) -> u64 {
        panic!("boom in explode")
    }
}

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

const SCHEMES: [&str; 2] = ["tcp", "ws"];
const INVENTORY: u8 = 0x11;
const ADMIN: u8 = 0x22;
const LOGISTICS: &str = "parcel tea kettle";

/// The checkout PKI: one CA, a leaf per platform name asked for.
struct Checkout {
    ca: test_pki::TestCa,
}

impl Checkout {
    fn new() -> Self {
        Self {
            ca: test_pki::ca("checkout CA", test_pki::KeyAlg::EcdsaP256),
        }
    }

    /// Proves and verifies `checkout`.
    fn add_to(&self, credentials: Credentials, platform: &str) -> Credentials {
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        let leaf = test_pki::leaf(
            &self.ca,
            platform,
            test_pki::KeyAlg::Ed25519,
            now - day,
            now + day,
        );
        let identity =
            CertificateIdentity::from_pem(&leaf.cert_pem, &leaf.key_pem).expect("identity");
        let anchor = RoleTrustAnchor::from_pem(&self.ca.cert_pem).expect("anchor");
        credentials
            .with_certificate(role("checkout"), identity)
            .with_trust_anchor(role("checkout"), anchor)
    }
}

fn with_key(credentials: Credentials, name: &str, byte: u8) -> Credentials {
    credentials.with_shared_key(role(name), SharedKey::new(&[byte; 32]).expect("key"))
}

fn with_password(credentials: Credentials, name: &str, text: &str) -> Credentials {
    credentials.with_password(role(name), Password::new(text).expect("password"))
}

fn builder(name: &str, credentials: Credentials) -> PlatformBuilder {
    let mut builder = Platform::builder(name).credentials(credentials);
    for transport in network_transports() {
        builder = builder.transport(transport);
    }
    builder
}

async fn start(builder: PlatformBuilder) -> Platform {
    builder
        .listen(address(TCP_ANY))
        .listen(address(WS_ANY))
        .start()
        .await
        .expect("platform starts")
}

/// A platform that dials `server` over `scheme`.
async fn dial(server: &Platform, scheme: &str, builder: PlatformBuilder) -> Platform {
    let client = builder.start().await.expect("client starts");
    let id = client
        .connect(&listening(server, scheme))
        .await
        .expect("connects");
    assert_eq!(id, server.id());
    client
}

async fn find<C: ServiceInterface>(platform: &Platform, scope: Scope) -> C {
    platform.find::<C>(scope).await.expect("service found")
}

/// Waits (at most 10 s) until `condition` holds.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn names(roles: &[&str]) -> BTreeSet<String> {
    roles.iter().map(|r| (*r).to_owned()).collect()
}

fn missing(roles: &[&str]) -> Required {
    Required::AnyOf(roles.iter().map(|r| role(r)).collect())
}

// ---------------------------------------------------------------------------
// Roles and access
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_call_per_role_type() {
    let checkout = Checkout::new();
    for scheme in SCHEMES {
        let all = |platform: &str| {
            let credentials = with_key(Credentials::new(), "inventory", INVENTORY);
            let credentials = with_password(credentials, "logistics", LOGISTICS);
            checkout.add_to(credentials, platform)
        };
        let server = start(builder("server", all("server"))).await;
        let _probe = server
            .spawn(Probe::default())
            .provide::<WarehouseServer>()
            .provide::<ShippingServer>()
            .provide::<PaymentServer>()
            .start()
            .await
            .expect("component starts");
        let client = dial(&server, scheme, builder("client", all("client"))).await;
        let everything = names(&["checkout", "inventory", "logistics"]);

        let here = Scope::Platform(server.id());
        let warehouse: WarehouseClient = find(&client, here.clone()).await;
        let shipping: ShippingClient = find(&client, here.clone()).await;
        let payment: PaymentClient = find(&client, here).await;
        for seen in [
            warehouse.who().await.expect("shared-key role"),
            shipping.who().await.expect("password role"),
            payment.who().await.expect("certificate role"),
        ] {
            assert_eq!(seen.caller, client.id().0, "{scheme}");
            assert!(!seen.local && seen.trusted);
            assert_eq!(seen.verified, everything, "{scheme}");
            assert_eq!(seen.roles, everything, "{scheme}");
        }
        client.shutdown();
        server.shutdown();
    }
}

#[tokio::test]
async fn each_role_type_alone_admits_only_its_service() {
    let checkout = Checkout::new();
    let server_credentials = || {
        let credentials = with_key(Credentials::new(), "inventory", INVENTORY);
        let credentials = with_password(credentials, "logistics", LOGISTICS);
        checkout.add_to(credentials, "server")
    };
    let probe = SharedProbe::default();
    let server = start(builder("server", server_credentials())).await;
    let _component = server
        .spawn(probe.clone())
        .provide::<WarehouseServer>()
        .provide::<ShippingServer>()
        .provide::<PaymentServer>()
        .start()
        .await
        .expect("component starts");
    let key_only = with_key(Credentials::new(), "inventory", INVENTORY);
    let password_only = with_password(Credentials::new(), "logistics", LOGISTICS);
    let certificate_only = checkout.add_to(Credentials::new(), "client");
    let wrong_password = with_password(
        with_key(Credentials::new(), "inventory", INVENTORY),
        "logistics",
        "parcel tea kettles",
    );
    let cases = [
        ("tcp", key_only, "inventory"),
        ("ws", password_only, "logistics"),
        ("tcp", certificate_only, "checkout"),
        ("ws", wrong_password, "inventory"),
    ];
    for (scheme, credentials, only) in cases {
        let client = dial(&server, scheme, builder("client", credentials)).await;
        let here = Scope::Platform(server.id());
        let warehouse: WarehouseClient = find(&client, here.clone()).await;
        let shipping: ShippingClient = find(&client, here.clone()).await;
        let payment: PaymentClient = find(&client, here).await;
        let results = [
            ("inventory", warehouse.who().await),
            ("logistics", shipping.who().await),
            ("checkout", payment.who().await),
        ];
        for (needed, result) in results {
            if needed == only {
                let seen = result.expect("the role it holds admits it");
                assert_eq!(seen.verified, names(&[only]), "{scheme}: {only}");
            } else {
                assert!(
                    matches!(&result, Err(CallError::AccessDenied { required, .. }) if *required == missing(&[needed])),
                    "{scheme}: holding {only}, calling the {needed} service: {result:?}"
                );
            }
        }
        client.shutdown();
    }
    assert_eq!(
        probe.0.runs.load(Ordering::SeqCst),
        4,
        "exactly the admitted calls ran"
    );
}

#[tokio::test]
async fn access_is_denied_before_the_method_runs() {
    let checkout = Checkout::new();
    let probe = SharedProbe::default();
    let server = start(builder(
        "server",
        checkout.add_to(
            with_key(Credentials::new(), "inventory", INVENTORY),
            "server",
        ),
    ))
    .await;
    let _component = server
        .spawn(probe.clone())
        .provide::<PaymentServer>()
        .start()
        .await
        .expect("component starts");
    let client = dial(
        &server,
        "tcp",
        builder(
            "client",
            with_key(Credentials::new(), "inventory", INVENTORY),
        ),
    )
    .await;
    let payment: PaymentClient = find(&client, Scope::Global).await;
    for _ in 0..3 {
        let error = payment.who().await.expect_err("no checkout role");
        assert_eq!(
            error,
            CallError::AccessDenied {
                service: "Payment".to_owned(),
                method: "who".to_owned(),
                required: missing(&["checkout"]),
            }
        );
        assert!(
            error.to_string().contains("missing role checkout"),
            "{error}"
        );
    }
    assert_eq!(
        probe.0.runs.load(Ordering::SeqCst),
        0,
        "the method never ran"
    );
}

#[tokio::test]
async fn a_method_rule_overrides_the_trait_rule() {
    let checkout = Checkout::new();
    let probe = SharedProbe::default();
    let server = start(builder(
        "server",
        checkout.add_to(with_key(Credentials::new(), "admin", ADMIN), "server"),
    ))
    .await;
    let _component = server
        .spawn(probe.clone())
        .provide::<PaymentServer>()
        .start()
        .await
        .expect("component starts");

    let cashier = dial(
        &server,
        "ws",
        builder("cashier", checkout.add_to(Credentials::new(), "cashier")),
    )
    .await;
    let payment: PaymentClient = find(&cashier, Scope::Global).await;
    assert!(payment.who().await.is_ok(), "checkout admits who");
    assert!(matches!(
        payment.refund(5).await,
        Err(CallError::AccessDenied { required, .. }) if required == missing(&["admin"])
    ));

    let admin = dial(
        &server,
        "tcp",
        builder("admin", with_key(Credentials::new(), "admin", ADMIN)),
    )
    .await;
    let payment: PaymentClient = find(&admin, Scope::Global).await;
    assert_eq!(payment.refund(5).await, Ok(5), "admin admits refund");
    assert!(matches!(
        payment.who().await,
        Err(CallError::AccessDenied { required, .. }) if required == missing(&["checkout"])
    ));
    assert_eq!(probe.0.runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_unauthenticated_peer_reaches_only_unrestricted_methods() {
    let probe = SharedProbe::default();
    let server = start(
        builder(
            "server",
            with_key(Credentials::new(), "inventory", INVENTORY),
        )
        .unauthenticated(UnauthenticatedPolicy::Accept),
    )
    .await;
    let _component = server
        .spawn(probe.clone())
        .provide::<PaymentServer>()
        .provide::<DeskServer>()
        .provide::<WarehouseServer>()
        .start()
        .await
        .expect("component starts");
    for scheme in SCHEMES {
        let stranger = dial(
            &server,
            scheme,
            builder("stranger", Credentials::new()).unauthenticated(UnauthenticatedPolicy::Accept),
        )
        .await;
        let payment: PaymentClient = find(&stranger, Scope::Global).await;
        let desk: DeskClient = find(&stranger, Scope::Global).await;
        // Only services with an unrestricted method are announced to it.
        assert!(stranger.search::<WarehouseClient>(Scope::Global).is_empty());

        assert_eq!(
            payment.currencies().await.expect("unrestricted"),
            ["EUR", "CHF"]
        );
        assert_eq!(desk.hours().await.expect("unrestricted"), "9-17");
        assert!(matches!(
            desk.who().await,
            Err(CallError::AccessDenied {
                required: Required::Trusted,
                ..
            })
        ));
        assert!(matches!(
            payment.who().await,
            Err(CallError::AccessDenied { required, .. }) if required == missing(&["checkout"])
        ));
        // Calling an unannounced service directly is refused the same way.
        let hidden = ServiceRef {
            service: Arc::from("Warehouse"),
            ..payment.target().clone()
        };
        let warehouse: WarehouseClient = stranger.client(hidden);
        assert!(matches!(
            warehouse.who().await,
            Err(CallError::AccessDenied { required, .. }) if required == missing(&["inventory"])
        ));
        stranger.shutdown();
    }
    assert_eq!(
        probe.0.runs.load(Ordering::SeqCst),
        4,
        "only the open methods ran"
    );
}

#[tokio::test]
async fn role_mapping_grants_local_roles() {
    let probe = SharedProbe::default();
    let server = start(
        builder(
            "server",
            with_password(
                with_key(Credentials::new(), "inventory", INVENTORY),
                "logistics",
                LOGISTICS,
            ),
        )
        .role_map(RoleMap::new().map(role("inventory"), role("auditor"))),
    )
    .await;
    let _component = server
        .spawn(probe.clone())
        .provide::<AuditServer>()
        .start()
        .await
        .expect("component starts");
    let mapped = dial(
        &server,
        "tcp",
        builder(
            "mapped",
            with_key(Credentials::new(), "inventory", INVENTORY),
        ),
    )
    .await;
    let audit: AuditClient = find(&mapped, Scope::Global).await;
    let seen = audit.who().await.expect("inventory maps to auditor");
    assert_eq!(seen.verified, names(&["inventory"]));
    assert_eq!(seen.roles, names(&["auditor", "inventory"]));

    let unmapped = dial(
        &server,
        "ws",
        builder(
            "unmapped",
            with_password(Credentials::new(), "logistics", LOGISTICS),
        ),
    )
    .await;
    let audit: AuditClient = find(&unmapped, Scope::Global).await;
    assert!(matches!(
        audit.who().await,
        Err(CallError::AccessDenied { required, .. }) if required == missing(&["auditor"])
    ));
    assert_eq!(probe.0.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn local_calls_carry_the_platforms_own_roles() {
    let probe = SharedProbe::default();
    let platform = start(builder(
        "solo",
        with_key(Credentials::new(), "inventory", INVENTORY),
    ))
    .await;
    let _component = platform
        .spawn(probe.clone())
        .provide::<WarehouseServer>()
        .provide::<PaymentServer>()
        .start()
        .await
        .expect("component starts");
    let warehouse: WarehouseClient = find(&platform, Scope::Local).await;
    let seen = warehouse.who().await.expect("own role admits");
    assert!(seen.local && seen.trusted);
    assert_eq!(seen.caller, platform.id().0);
    assert_eq!(seen.roles, names(&["inventory"]));
    let payment: PaymentClient = find(&platform, Scope::Local).await;
    assert!(matches!(
        payment.who().await,
        Err(CallError::AccessDenied { required, .. }) if required == missing(&["checkout"])
    ));
    assert_eq!(probe.0.runs.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------------------
// Deadlines, cancellation, panics, ordering
// ---------------------------------------------------------------------------

/// A server with a `Slow` component and a client dialed over `scheme`.
async fn slow_pair(scheme: &str) -> (Platform, Platform, Arc<Sleeper>) {
    let sleeper = SharedSleeper::default();
    let state = Arc::clone(&sleeper.0);
    let server = start(builder("server", shared_key("inventory", INVENTORY))).await;
    // Leak the handle: the component lives as long as the platform.
    std::mem::forget(
        server
            .spawn(sleeper)
            .provide::<SlowServer>()
            .start()
            .await
            .expect("component starts"),
    );
    let client = dial(
        &server,
        scheme,
        builder("client", shared_key("inventory", INVENTORY)),
    )
    .await;
    (server, client, state)
}

#[tokio::test]
async fn an_expired_deadline_fails_the_call_and_stops_the_method() {
    for scheme in SCHEMES {
        let (_server, client, sleeper) = slow_pair(scheme).await;
        let slow: SlowClient = find(&client, Scope::Global).await;
        let started = Instant::now();
        let result = slow
            .with_timeout(Duration::from_millis(300))
            .sleep(1, 60_000)
            .await;
        assert!(
            matches!(result, Err(CallError::Timeout { after }) if after <= Duration::from_millis(300)),
            "{scheme}: {result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        eventually("the remote method is dropped", || {
            sleeper.dropped.load(Ordering::SeqCst) == 1
        })
        .await;
        assert_eq!(sleeper.completed.load(Ordering::SeqCst), 0);
    }
}

#[tokio::test]
async fn dropping_the_call_cancels_the_remote_method() {
    for scheme in SCHEMES {
        let (_server, client, sleeper) = slow_pair(scheme).await;
        let slow: SlowClient = find(&client, Scope::Global).await;
        let call = tokio::spawn(async move { slow.sleep(7, 60_000).await });
        tokio::time::timeout(Duration::from_secs(10), sleeper.started.notified())
            .await
            .expect("the method starts");
        call.abort();
        eventually("the remote method is dropped", || {
            sleeper.dropped.load(Ordering::SeqCst) == 1
        })
        .await;
        assert_eq!(sleeper.completed.load(Ordering::SeqCst), 0, "{scheme}");
    }
}

#[tokio::test]
async fn a_panic_fails_only_that_call() {
    let (_server, client, sleeper) = slow_pair("tcp").await;
    let slow: SlowClient = find(&client, Scope::Global).await;
    match slow.explode().await {
        Err(CallError::Remote(RemoteFailure::Panicked { message })) => {
            assert!(message.contains("boom in explode"), "{message}");
        }
        other => panic!("expected a panic report, got {other:?}"),
    }
    assert_eq!(slow.sleep(3, 1).await, Ok(3), "the component lives on");
    assert_eq!(sleeper.completed.load(Ordering::SeqCst), 1);
}

#[service]
trait Sequence {
    async fn step(&self, n: u32);
}

#[derive(Clone, Default)]
struct Sequencer {
    inside: Arc<AtomicUsize>,
    overlaps: Arc<AtomicUsize>,
    order: Arc<Mutex<Vec<u32>>>,
}

impl Component for Sequencer {}

impl Sequence for Sequencer {
    async fn step(&self, n: u32) {
        if self.inside.fetch_add(1, Ordering::SeqCst) != 0 {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        self.order.lock().expect("lock").push(n);
        // No await in here: if two calls ran at once on two threads, they
        // would meet inside this section.
        std::thread::sleep(Duration::from_millis(2));
        self.inside.fetch_sub(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_into_one_component_run_one_at_a_time_in_arrival_order() {
    let sequencer = Sequencer::default();
    let platform = start(builder("solo", shared_key("inventory", INVENTORY))).await;
    let _component = platform
        .spawn(sequencer.clone())
        .provide::<SequenceServer>()
        .start()
        .await
        .expect("component starts");
    let client: SequenceClient = find(&platform, Scope::Local).await;
    let calls: Vec<_> = (0..40).map(|n| client.step(n)).collect();
    for result in futures_join_all(calls).await {
        result.expect("step");
    }
    assert_eq!(sequencer.overlaps.load(Ordering::SeqCst), 0);
    assert_eq!(
        *sequencer.order.lock().expect("lock"),
        (0..40).collect::<Vec<_>>()
    );
}

/// Polls every future in order, then again until all are done.
async fn futures_join_all<F: std::future::Future + Unpin>(futures: Vec<F>) -> Vec<F::Output> {
    let mut slots: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    let mut futures: Vec<Option<F>> = futures.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, future) in slots.iter_mut().zip(futures.iter_mut()) {
            if let Some(f) = future {
                match std::pin::Pin::new(f).poll(cx) {
                    std::task::Poll::Ready(output) => {
                        *slot = Some(output);
                        *future = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    slots.into_iter().flatten().collect()
}

// ---------------------------------------------------------------------------
// Re-entrant chains
// ---------------------------------------------------------------------------

#[service]
trait Echo {
    /// Calls the other platform's echo `hops` times back and forth.
    async fn bounce(&self, hops: u32) -> Vec<String>;
}

#[derive(Default)]
struct Bouncer {
    platform: OnceLock<Platform>,
}

impl Component for Bouncer {
    async fn started(&self, context: &ComponentContext) {
        let _ = self.platform.set(context.platform().clone());
    }
}

impl Echo for Bouncer {
    async fn bounce(&self, hops: u32) -> Vec<String> {
        let platform = self.platform.get().expect("started");
        let mut path = vec![platform.name().to_owned()];
        if hops > 0 {
            let other = platform
                .search::<EchoClient>(Scope::Global)
                .into_iter()
                .find(|found| found.platform != platform.id())
                .expect("the other echo is known");
            let echo: EchoClient = platform.client(other);
            path.extend(echo.bounce(hops - 1).await.expect("inner call"));
        }
        path
    }
}

#[tokio::test]
async fn a_reentrant_chain_a_b_a_completes() {
    for scheme in SCHEMES {
        let b = start(builder("b", shared_key("inventory", INVENTORY))).await;
        let _b_echo = b
            .spawn(Bouncer::default())
            .provide::<EchoServer>()
            .start()
            .await
            .expect("b's echo");
        let a = dial(&b, scheme, builder("a", shared_key("inventory", INVENTORY))).await;
        let _a_echo = a
            .spawn(Bouncer::default())
            .provide::<EchoServer>()
            .start()
            .await
            .expect("a's echo");
        eventually("both echoes are known on both sides", || {
            a.search::<EchoClient>(Scope::Global).len() == 2
                && b.search::<EchoClient>(Scope::Global).len() == 2
        })
        .await;
        let echo: EchoClient = find(&a, Scope::Local).await;
        let path = echo
            .with_timeout(Duration::from_secs(10))
            .bounce(4)
            .await
            .expect("A -> B -> A -> B -> A completes");
        assert_eq!(path, ["a", "b", "a", "b", "a"], "{scheme}");
        a.shutdown();
        b.shutdown();
    }
}

// ---------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------

fn platforms_of<C: ServiceInterface>(platform: &Platform) -> BTreeSet<PlatformId> {
    platform
        .search::<C>(Scope::Global)
        .into_iter()
        .map(|found| found.platform)
        .collect()
}

#[tokio::test]
async fn discovery_follows_platforms_joining_and_leaving() {
    // `find` waits up to the call timeout for a service to appear.
    let limits = jadeite::Limits {
        call_timeout: Duration::from_secs(1),
        ..jadeite::Limits::default()
    };
    let hub = start(builder("hub", shared_key("inventory", INVENTORY)).limits(limits)).await;
    let b = dial(
        &hub,
        "tcp",
        builder("b", shared_key("inventory", INVENTORY)),
    )
    .await;
    let _b_probe = b
        .spawn(Probe::default())
        .provide::<WarehouseServer>()
        .start()
        .await
        .expect("b's warehouse");
    eventually("b's warehouse is announced", || {
        platforms_of::<WarehouseClient>(&hub) == BTreeSet::from([b.id()])
    })
    .await;

    // C joins over WebSocket.
    let c = dial(&hub, "ws", builder("c", shared_key("inventory", INVENTORY))).await;
    let c_probe = c
        .spawn(Probe::default())
        .provide::<WarehouseServer>()
        .start()
        .await
        .expect("c's warehouse");
    eventually("c's warehouse is announced", || {
        platforms_of::<WarehouseClient>(&hub) == BTreeSet::from([b.id(), c.id()])
    })
    .await;
    let named: WarehouseClient = find(&hub, Scope::Named("c".to_owned())).await;
    assert_eq!(named.target().platform, c.id());
    assert_eq!(&*named.target().platform_name, "c");

    // A killed component's service disappears; a stale client gets a clear error.
    c_probe.kill().await;
    eventually("c's warehouse is withdrawn", || {
        platforms_of::<WarehouseClient>(&hub) == BTreeSet::from([b.id()])
    })
    .await;
    assert!(matches!(
        named.who().await,
        Err(CallError::NoSuchService { service }) if service == "Warehouse"
    ));

    // B leaves: its services go with it.
    b.shutdown();
    eventually("b's warehouse leaves with b", || {
        platforms_of::<WarehouseClient>(&hub).is_empty()
    })
    .await;
    assert!(matches!(
        hub.find::<WarehouseClient>(Scope::Platform(b.id())).await,
        Err(CallError::NoSuchService { .. })
    ));
}

#[tokio::test]
async fn discovery_and_calls_through_a_relay() {
    // A and C each know only B; C's service is found and called from A.
    let relay = start(builder("relay", shared_key("inventory", INVENTORY))).await;
    let a = dial(
        &relay,
        "tcp",
        builder("a", shared_key("inventory", INVENTORY)),
    )
    .await;
    let c = dial(
        &relay,
        "ws",
        builder("c", shared_key("inventory", INVENTORY)),
    )
    .await;
    let _c_probe = c
        .spawn(Probe::default())
        .provide::<WarehouseServer>()
        .start()
        .await
        .expect("c's warehouse");
    let warehouse: WarehouseClient = find(&a, Scope::Named("c".to_owned())).await;
    assert_eq!(warehouse.target().platform, c.id());
    let seen = warehouse.who().await.expect("call through the relay");
    assert_eq!(
        seen.caller,
        a.id().0,
        "C sees A as the caller, not the relay"
    );
    assert_eq!(seen.verified, names(&["inventory"]));
    // A and C hold a session of their own, end to end through the relay.
    assert!(a.session_info(c.id()).await.is_some());
    assert!(c.session_info(a.id()).await.is_some());
}

// ---------------------------------------------------------------------------
// Lost connections
// ---------------------------------------------------------------------------

#[tokio::test]
async fn calls_in_flight_when_the_connection_drops_fail_clearly_or_complete_once() {
    for scheme in SCHEMES {
        let sleeper = SharedSleeper::default();
        let state = Arc::clone(&sleeper.0);
        let server = start(builder("server", shared_key("inventory", INVENTORY))).await;
        let _component = server
            .spawn(sleeper)
            .provide::<SlowServer>()
            .start()
            .await
            .expect("component starts");
        let faults = Faults::new();
        let mut client_builder =
            Platform::builder("client").credentials(shared_key("inventory", INVENTORY));
        for transport in network_transports() {
            client_builder = client_builder.transport(Arc::new(FaultyTransport::new(
                transport,
                Arc::clone(&faults),
            )));
        }
        let client = dial(&server, scheme, client_builder).await;
        let slow: SlowClient = find(&client, Scope::Global).await;
        let calls: Vec<_> = (0..20u64)
            .map(|id| {
                let slow = slow.clone();
                tokio::spawn(async move {
                    slow.with_timeout(Duration::from_secs(5))
                        .sleep(id, 300)
                        .await
                })
            })
            .collect();
        eventually("the calls reached the server", || {
            !state.runs.lock().expect("lock").is_empty()
        })
        .await;
        faults.cut_connections();
        let mut completed = 0;
        for (id, call) in calls.into_iter().enumerate() {
            match call.await.expect("call task") {
                Ok(value) => {
                    assert_eq!(value, id as u64);
                    completed += 1;
                }
                Err(
                    CallError::ConnectionLost { .. }
                    | CallError::Timeout { .. }
                    | CallError::Unreachable { .. },
                ) => {}
                Err(other) => panic!("{scheme}: unclear failure {other:?}"),
            }
        }
        let runs = state.runs.lock().expect("lock").clone();
        let distinct: BTreeSet<u64> = runs.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            runs.len(),
            "{scheme}: a call ran twice: {runs:?}"
        );
        assert!(completed <= runs.len());
        // The link is redialed; new calls go through.
        assert_eq!(
            slow.with_timeout(Duration::from_secs(10))
                .sleep(100, 1)
                .await,
            Ok(100),
            "{scheme}"
        );
        client.shutdown();
        server.shutdown();
    }
}

#[tokio::test]
async fn a_role_map_from_a_config_file_applies_to_calls() {
    let dir = std::env::temp_dir().join(format!("jadeite-rolemap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("inventory.key"), "11".repeat(32)).expect("key file");
    let toml = r#"
name = "server"
listen = ["tcp://127.0.0.1:0"]

[roles.inventory]
shared_key_file = "inventory.key"

[role_map]
inventory = ["auditor", "stock-reader"]
"#;
    let mut configured = Platform::from_config_str(toml, &dir).expect("valid config");
    for transport in network_transports() {
        configured = configured.transport(transport);
    }
    let server = configured.start().await.expect("server starts");
    let _ = std::fs::remove_dir_all(&dir);
    let _component = server
        .spawn(Probe::default())
        .provide::<AuditServer>()
        .start()
        .await
        .expect("component starts");
    let client = dial(
        &server,
        "tcp",
        builder(
            "client",
            with_key(Credentials::new(), "inventory", INVENTORY),
        ),
    )
    .await;
    let audit: AuditClient = find(&client, Scope::Global).await;
    let seen = audit.who().await.expect("inventory maps to auditor");
    assert_eq!(seen.verified, names(&["inventory"]));
    assert_eq!(seen.roles, names(&["auditor", "inventory", "stock-reader"]));
}

#[tokio::test]
async fn a_platform_without_application_messages_keeps_serving_under_a_flood() {
    let server =
        start(builder("server", shared_key("inventory", INVENTORY)).application_messages(false))
            .await;
    let _probe = server
        .spawn(Probe::default())
        .provide::<DeskServer>()
        .start()
        .await
        .expect("component starts");
    let client = dial(
        &server,
        "tcp",
        builder("client", shared_key("inventory", INVENTORY)),
    )
    .await;
    // Far more raw messages than the delivery queue holds, none ever read.
    for n in 0..5000u32 {
        client
            .send(server.id(), n.to_be_bytes().to_vec())
            .await
            .expect("send");
    }
    let desk: DeskClient = find(&client, Scope::Global).await;
    assert_eq!(desk.hours().await, Ok("9-17".to_owned()));
    assert!(
        tokio::time::timeout(Duration::from_millis(200), server.receive())
            .await
            .is_err(),
        "an application message was delivered"
    );
}
