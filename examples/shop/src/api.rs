//! The API platform's component: the `UserApi` service (carts, checkout,
//! orders) on top of the other four services, and the order store.
//!
//! Carts live in memory; orders live in a JSON file, rewritten whole and
//! renamed into place on every change, so a crash leaves the old file or the
//! new one, never half of either. A shop of this size keeps a few thousand
//! orders at most: a file needs no extra dependency, can be read by a
//! person, and survives a restart of the API platform, which is all the demo
//! asks. (A real shop would want an embedded database and a log.)
//!
//! Checkout saves the order before anything is charged, then moves it
//! forward: charge (idempotent per order id at the payment service), then
//! the shipment (idempotent per order id at shipping). Whatever step cannot
//! be done now is retried in the background, so an order whose shipping
//! platform is down is paid, reported as "shipping pending", and shipped
//! once the platform is back: never lost, never charged twice.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use jadeite::service::ServiceInterface;
use jadeite::{CallError, Component, ComponentContext, Platform, Scope};
use serde::{Deserialize, Serialize};

use crate::services::{
    Cart, Cents, IntrusionClient, Item, ItemId, Line, Order, OrderId, OrderState, PaymentClient,
    PaymentError, ShippingClient, ShopError, SuggestionClient, UserApi, WarehouseClient,
};

/// Longest the API waits for another platform's answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How often unfinished orders are moved forward again.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// Largest order file read back.
const MAX_STORE_LEN: u64 = 64 * 1024 * 1024;
/// Items one cart may hold.
const MAX_CART_LINES: usize = 64;

/// The orders, persisted.
#[derive(Debug)]
pub struct OrderStore {
    path: PathBuf,
    state: Mutex<StoreState>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StoreState {
    next_id: OrderId,
    orders: BTreeMap<OrderId, Order>,
}

impl OrderStore {
    /// Opens the store at `path`, reading the orders a previous run left.
    pub fn open(path: &Path) -> Result<Self, String> {
        let state = match std::fs::metadata(path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => StoreState {
                next_id: 1,
                orders: BTreeMap::new(),
            },
            Err(error) => return Err(format!("{}: {error}", path.display())),
            Ok(meta) if meta.len() > MAX_STORE_LEN => {
                return Err(format!(
                    "{}: larger than {MAX_STORE_LEN} bytes",
                    path.display()
                ));
            }
            Ok(_) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|error| format!("{}: {error}", path.display()))?;
                serde_json::from_str(&text)
                    .map_err(|error| format!("{}: not an order file: {error}", path.display()))?
            }
        };
        Ok(Self {
            path: path.to_owned(),
            state: Mutex::new(state),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, StoreState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes all orders to a temporary file and renames it over the store.
    fn save(&self, state: &StoreState) -> Result<(), ShopError> {
        let storage = |error: std::io::Error| ShopError::Storage(error.to_string());
        let text = serde_json::to_vec_pretty(state)
            .map_err(|error| ShopError::Storage(error.to_string()))?;
        let temporary = self.path.with_extension("json.tmp");
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&temporary).map_err(storage)?;
            file.write_all(&text).map_err(storage)?;
            file.sync_all().map_err(storage)?;
        }
        std::fs::rename(&temporary, &self.path).map_err(storage)
    }

    /// Saves a new order and returns it with its id.
    fn place(
        &self,
        customer: &str,
        lines: Vec<Line>,
        total: Cents,
        reservations: Vec<String>,
    ) -> Result<Order, ShopError> {
        let mut state = self.state();
        let order = Order {
            id: state.next_id,
            customer: customer.to_owned(),
            lines,
            total,
            reservations,
            state: OrderState::Placed,
            receipt: None,
            problem: None,
            shipment: None,
        };
        state.next_id += 1;
        state.orders.insert(order.id, order.clone());
        if let Err(error) = self.save(&state) {
            state.orders.remove(&order.id);
            return Err(error);
        }
        Ok(order)
    }

    /// Applies `change` to order `id` and saves.
    fn update(&self, id: OrderId, change: impl FnOnce(&mut Order)) -> Result<Order, ShopError> {
        let mut state = self.state();
        let order = state
            .orders
            .get_mut(&id)
            .ok_or(ShopError::NoSuchOrder(id))?;
        change(order);
        let order = order.clone();
        self.save(&state)?;
        Ok(order)
    }

    fn get(&self, id: OrderId) -> Option<Order> {
        self.state().orders.get(&id).cloned()
    }

    fn of_customer(&self, customer: &str) -> Vec<Order> {
        self.state()
            .orders
            .values()
            .filter(|o| o.customer == customer)
            .cloned()
            .collect()
    }

    fn unfinished(&self) -> Vec<Order> {
        self.state()
            .orders
            .values()
            .filter(|o| matches!(o.state, OrderState::Placed | OrderState::ShippingPending))
            .cloned()
            .collect()
    }
}

/// One customer's cart: quantities by item, and the generation that names
/// its reservations (a new one after each checkout, so the next cart never
/// touches units already sold).
#[derive(Debug, Default)]
struct CartState {
    generation: u64,
    lines: BTreeMap<ItemId, u32>,
}

/// The state behind the `UserApi` service, shared with its retry loop.
#[derive(Debug)]
struct Shop {
    platform: OnceLock<Platform>,
    store: OrderStore,
    carts: Mutex<HashMap<String, CartState>>,
    /// Names and prices as the warehouse last reported them.
    prices: Mutex<HashMap<ItemId, Cents>>,
}

#[derive(Debug)]
pub struct Shopfront {
    shop: Arc<Shop>,
}

impl Shopfront {
    pub fn new(store: OrderStore) -> Self {
        Self {
            shop: Arc::new(Shop {
                platform: OnceLock::new(),
                store,
                carts: Mutex::new(HashMap::new()),
                prices: Mutex::new(HashMap::new()),
            }),
        }
    }
}

impl Component for Shopfront {
    async fn started(&self, context: &ComponentContext) {
        let _ = self.shop.platform.set(context.platform().clone());
        let shop = Arc::downgrade(&self.shop);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RETRY_EVERY).await;
                let Some(shop) = shop.upgrade() else { return };
                for order in shop.store.unfinished() {
                    shop.advance(order).await;
                }
            }
        });
    }
}

/// `customer` is a short name of letters and digits: it names carts,
/// reservations and orders.
fn valid_customer(customer: &str) -> bool {
    (1..=32).contains(&customer.len()) && customer.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn unavailable(service: &str, error: &CallError) -> ShopError {
    tracing::warn!(service, %error, "call failed");
    ShopError::Unavailable(service.to_owned())
}

impl Shop {
    fn platform(&self) -> Result<&Platform, ShopError> {
        self.platform
            .get()
            .ok_or_else(|| ShopError::Unavailable("the API platform".to_owned()))
    }

    /// A client of the first instance of `C` anywhere in the shop, now.
    fn service<C: ServiceInterface>(&self) -> Result<C, ShopError> {
        let platform = self.platform()?;
        let target = platform
            .search::<C>(Scope::Global)
            .into_iter()
            .next()
            .ok_or_else(|| ShopError::Unavailable(C::NAME.to_owned()))?;
        Ok(C::from_handle(
            platform
                .client::<C>(target)
                .handle()
                .with_timeout(CALL_TIMEOUT),
        ))
    }

    fn remember_prices(&self, items: &[Item]) {
        let mut prices = self.prices.lock().unwrap_or_else(|p| p.into_inner());
        for item in items {
            prices.insert(item.id, item.price);
        }
    }

    fn cart_of(&self, customer: &str) -> Cart {
        let carts = self.carts.lock().unwrap_or_else(|p| p.into_inner());
        let prices = self.prices.lock().unwrap_or_else(|p| p.into_inner());
        let lines: Vec<Line> = carts
            .get(customer)
            .map(|cart| {
                cart.lines
                    .iter()
                    .map(|(&item, &quantity)| Line { item, quantity })
                    .collect()
            })
            .unwrap_or_default();
        let total = lines
            .iter()
            .map(|line| prices.get(&line.item).copied().unwrap_or(0) * u64::from(line.quantity))
            .sum();
        Cart {
            customer: customer.to_owned(),
            lines,
            total,
        }
    }

    fn reservation(customer: &str, generation: u64, item: ItemId) -> String {
        format!("cart:{customer}:{generation}:{item}")
    }

    /// Moves an order as far as it can go now; saves every step.
    async fn advance(&self, mut order: Order) -> Order {
        if order.state == OrderState::Placed {
            order = self.charge(order).await;
        }
        if order.state == OrderState::ShippingPending {
            order = self.ship(order).await;
        }
        order
    }

    async fn charge(&self, order: Order) -> Order {
        let payment = match self.service::<PaymentClient>() {
            Ok(payment) => payment,
            Err(_) => return order,
        };
        let outcome = payment
            .charge(order.id, order.customer.clone(), order.total)
            .await;
        let saved = match outcome {
            // Paid: from here on only shipping is left.
            Ok(Ok(receipt)) => {
                self.record_purchase(&order).await;
                self.store.update(order.id, |o| {
                    o.state = OrderState::ShippingPending;
                    o.receipt = Some(receipt);
                })
            }
            Ok(Err(refusal)) => {
                self.release(&order).await;
                self.store.update(order.id, |o| {
                    o.state = OrderState::PaymentFailed;
                    o.problem = Some(describe(&refusal));
                })
            }
            // Not answered: it may or may not have been charged. Charging
            // again later is safe, because charges are per order id.
            Err(error) => {
                tracing::warn!(order = order.id, %error, "payment not confirmed; will retry");
                return order;
            }
        };
        saved.unwrap_or_else(|error| {
            tracing::error!(order = order.id, %error, "order not saved");
            order
        })
    }

    async fn ship(&self, order: Order) -> Order {
        let Ok(shipping) = self.service::<ShippingClient>() else {
            return order;
        };
        match shipping
            .create(order.id, order.customer.clone(), order.lines.clone())
            .await
        {
            Ok(shipment) => self
                .store
                .update(order.id, |o| {
                    o.state = OrderState::Shipped;
                    o.shipment = Some(shipment.status);
                })
                .unwrap_or(order),
            Err(error) => {
                tracing::info!(order = order.id, %error, "shipping pending");
                order
            }
        }
    }

    /// Gives back what the order's cart reserved (payment refused).
    async fn release(&self, order: &Order) {
        let Ok(warehouse) = self.service::<WarehouseClient>() else {
            return;
        };
        for reservation in &order.reservations {
            if let Err(error) = warehouse.release(reservation.clone()).await {
                tracing::warn!(order = order.id, %error, "reservation not released");
            }
        }
    }

    async fn record_purchase(&self, order: &Order) {
        if let Ok(suggestion) = self.service::<SuggestionClient>() {
            let items = order.lines.iter().map(|l| l.item).collect();
            if let Err(error) = suggestion
                .record_purchase(order.customer.clone(), items)
                .await
            {
                tracing::info!(order = order.id, %error, "purchase not recorded for suggestions");
            }
        }
    }
}

fn describe(refusal: &PaymentError) -> String {
    match refusal {
        PaymentError::InsufficientFunds { balance, needed } => format!(
            "insufficient funds: balance {}, needed {}",
            money(*balance),
            money(*needed)
        ),
        PaymentError::UnknownCustomer(customer) => format!("unknown customer {customer}"),
        PaymentError::Conflict(order) => format!("order {order} was charged differently before"),
    }
}

pub fn money(cents: Cents) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

impl UserApi for Shopfront {
    async fn catalogue(&self) -> Result<Vec<Item>, ShopError> {
        let warehouse = self.shop.service::<WarehouseClient>()?;
        let items = warehouse
            .catalogue()
            .await
            .map_err(|e| unavailable("the warehouse", &e))?;
        self.shop.remember_prices(&items);
        Ok(items)
    }

    async fn cart(&self, customer: String) -> Cart {
        self.shop.cart_of(&customer)
    }

    async fn set_in_cart(
        &self,
        customer: String,
        item: ItemId,
        quantity: u32,
    ) -> Result<Cart, ShopError> {
        if !valid_customer(&customer) {
            return Err(ShopError::Unavailable(format!(
                "a customer named {customer:?}"
            )));
        }
        let generation = {
            let mut carts = self.shop.carts.lock().unwrap_or_else(|p| p.into_inner());
            let cart = carts.entry(customer.clone()).or_default();
            if quantity > 0 && !cart.lines.contains_key(&item) && cart.lines.len() >= MAX_CART_LINES
            {
                return Err(ShopError::Stock(crate::services::StockError::OutOfStock {
                    item,
                    available: 0,
                }));
            }
            cart.generation
        };
        let warehouse = self.shop.service::<WarehouseClient>()?;
        let reservation = Shop::reservation(&customer, generation, item);
        if quantity == 0 {
            warehouse
                .release(reservation)
                .await
                .map_err(|e| unavailable("the warehouse", &e))?;
        } else {
            let reserved = warehouse
                .reserve(reservation, item, quantity)
                .await
                .map_err(|e| unavailable("the warehouse", &e))?
                .map_err(ShopError::Stock)?;
            self.shop.remember_prices(std::slice::from_ref(&reserved));
        }
        {
            let mut carts = self.shop.carts.lock().unwrap_or_else(|p| p.into_inner());
            let cart = carts.entry(customer.clone()).or_default();
            if quantity == 0 {
                cart.lines.remove(&item);
            } else {
                cart.lines.insert(item, quantity);
            }
        }
        Ok(self.shop.cart_of(&customer))
    }

    async fn checkout(&self, customer: String) -> Result<Order, ShopError> {
        let cart = self.shop.cart_of(&customer);
        if cart.lines.is_empty() {
            return Err(ShopError::EmptyCart);
        }
        let generation = {
            let carts = self.shop.carts.lock().unwrap_or_else(|p| p.into_inner());
            carts.get(&customer).map_or(0, |cart| cart.generation)
        };
        let reservations = cart
            .lines
            .iter()
            .map(|line| Shop::reservation(&customer, generation, line.item))
            .collect();
        let order = self
            .shop
            .store
            .place(&customer, cart.lines, cart.total, reservations)?;
        {
            // The reservations now belong to the order; the next cart
            // reserves under a new generation.
            let mut carts = self.shop.carts.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(cart) = carts.get_mut(&customer) {
                cart.generation += 1;
                cart.lines.clear();
            }
        }
        tracing::info!(order = order.id, %customer, total = order.total, "order placed");
        Ok(self.shop.advance(order).await)
    }

    async fn order(&self, id: OrderId) -> Result<Order, ShopError> {
        let mut order = self.shop.store.get(id).ok_or(ShopError::NoSuchOrder(id))?;
        if order.state == OrderState::Shipped
            && let Ok(shipping) = self.shop.service::<ShippingClient>()
            && let Ok(Some(shipment)) = shipping.status(id).await
        {
            order.shipment = Some(shipment.status);
        }
        Ok(order)
    }

    async fn orders(&self, customer: String) -> Vec<Order> {
        self.shop.store.of_customer(&customer)
    }

    async fn suggestions(&self, customer: String) -> Result<Vec<Item>, ShopError> {
        let suggestion = self.shop.service::<SuggestionClient>()?;
        let ids = suggestion
            .suggest(customer, 3)
            .await
            .map_err(|e| unavailable("the suggestion service", &e))?;
        let catalogue = self.catalogue().await?;
        Ok(ids
            .into_iter()
            .filter_map(|id| catalogue.iter().find(|item| item.id == id).cloned())
            .collect())
    }

    async fn balance(&self, customer: String) -> Result<Option<Cents>, ShopError> {
        let payment = self.shop.service::<PaymentClient>()?;
        payment
            .balance(customer)
            .await
            .map_err(|e| unavailable("the payment service", &e))
    }

    async fn attack(&self, amount: Cents) -> Result<String, ShopError> {
        let intrusion = self.shop.service::<IntrusionClient>()?;
        intrusion
            .try_charge("alice".to_owned(), amount)
            .await
            .map_err(|e| unavailable("the suggestions platform", &e))
    }
}
