//! The five services of the paper's Fig. 1 web shop, and what they exchange.
//!
//! Who may call what is written here, on the traits, and nowhere else:
//! the payment service admits only `checkout` (an X.509 role the API
//! platform alone holds), the warehouse only `inventory` (a shared key of
//! the API and logistics platforms), shipping only `logistics` (a password
//! of the same two). Everything else needs a trusted caller: any platform
//! of the shop (they all hold the `shop` key).

use jadeite::{CallContext, service};
use serde::{Deserialize, Serialize};

pub type ItemId = u32;
pub type OrderId = u64;
/// Money in cents: no floating point anywhere near a payment.
pub type Cents = u64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub id: ItemId,
    pub name: String,
    pub price: Cents,
    /// Units that can still be reserved.
    pub available: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub item: ItemId,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StockError {
    UnknownItem(ItemId),
    OutOfStock { item: ItemId, available: u32 },
    ZeroQuantity,
}

#[service(roles = ["inventory"])]
pub trait Warehouse {
    async fn catalogue(&self) -> Vec<Item>;
    async fn stock(&self, item: ItemId) -> Option<u32>;
    /// Holds `quantity` units under `reservation` (replacing what it held
    /// before, so repeating a call changes nothing).
    async fn reserve(
        &self,
        reservation: String,
        item: ItemId,
        quantity: u32,
    ) -> Result<Item, StockError>;
    /// Gives the units held under `reservation` back; false if none were.
    async fn release(&self, reservation: String) -> bool;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub order: OrderId,
    pub customer: String,
    pub amount: Cents,
    /// The customer's balance after this charge.
    pub balance: Cents,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentError {
    InsufficientFunds {
        balance: Cents,
        needed: Cents,
    },
    UnknownCustomer(String),
    /// The order was charged before, for another amount or customer.
    Conflict(OrderId),
}

#[service(roles = ["checkout"])]
pub trait Payment {
    /// Charges `amount` for `order`. Idempotent per order id: charging an
    /// order again returns its first receipt and moves no money.
    async fn charge(
        &self,
        cx: &CallContext,
        order: OrderId,
        customer: String,
        amount: Cents,
    ) -> Result<Receipt, PaymentError>;
    /// Refunds a charged order once; false if there is nothing to refund.
    async fn refund(&self, order: OrderId) -> bool;
    async fn balance(&self, customer: String) -> Option<Cents>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShipmentStatus {
    Packing,
    InTransit,
    Delivered,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    pub order: OrderId,
    pub customer: String,
    pub lines: Vec<Line>,
    pub status: ShipmentStatus,
}

#[service(roles = ["logistics"])]
pub trait Shipping {
    /// Creates the shipment of `order`; idempotent per order id.
    async fn create(&self, order: OrderId, customer: String, lines: Vec<Line>) -> Shipment;
    async fn status(&self, order: OrderId) -> Option<Shipment>;
}

#[service]
pub trait Suggestion {
    async fn record_purchase(&self, customer: String, items: Vec<ItemId>);
    /// Items bought by customers who bought what `customer` bought, most
    /// shared first, without what `customer` already has.
    async fn suggest(&self, customer: String, limit: u32) -> Vec<ItemId>;
}

/// The scripted attack: what a compromised suggestions platform could try.
/// It runs on that platform, with that platform's roles.
#[service]
pub trait Intrusion {
    /// Tries to charge `amount` to `customer` through the payment service;
    /// the outcome, as the attacker sees it.
    async fn try_charge(&self, customer: String, amount: Cents) -> String;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Saved; payment not yet confirmed.
    Placed,
    /// Charged; the shipment not yet created (shipping was unreachable).
    ShippingPending,
    Shipped,
    /// Refused by payment: nothing charged, reservations released.
    PaymentFailed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub customer: String,
    pub lines: Vec<Line>,
    pub total: Cents,
    /// What the warehouse holds for it, to give back if payment fails.
    pub reservations: Vec<String>,
    pub state: OrderState,
    pub receipt: Option<Receipt>,
    /// Why payment failed, for `PaymentFailed`.
    pub problem: Option<String>,
    /// Live from the shipping service when asked, for `Shipped`.
    pub shipment: Option<ShipmentStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    pub customer: String,
    pub lines: Vec<Line>,
    pub total: Cents,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShopError {
    EmptyCart,
    Stock(StockError),
    /// A service the shop needs is not reachable now.
    Unavailable(String),
    NoSuchOrder(OrderId),
    /// Storing the order failed; nothing was charged.
    Storage(String),
}

impl std::fmt::Display for ShopError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::EmptyCart => f.write_str("the cart is empty"),
            Self::Stock(StockError::UnknownItem(item)) => write!(f, "no item {item}"),
            Self::Stock(StockError::OutOfStock { item, available }) => {
                write!(f, "item {item}: only {available} left")
            }
            Self::Stock(StockError::ZeroQuantity) => f.write_str("quantity must be at least 1"),
            Self::Unavailable(what) => write!(f, "{what} is unavailable, try again shortly"),
            Self::NoSuchOrder(order) => write!(f, "no order {order}"),
            Self::Storage(why) => write!(f, "the order could not be stored: {why}"),
        }
    }
}

/// The external API, served over HTTP+JSON by the API platform and callable
/// as a service by any platform of the shop.
#[service]
pub trait UserApi {
    async fn catalogue(&self) -> Result<Vec<Item>, ShopError>;
    async fn cart(&self, customer: String) -> Cart;
    /// Sets the quantity of `item` in the cart (0 removes it), reserving stock.
    async fn set_in_cart(
        &self,
        customer: String,
        item: ItemId,
        quantity: u32,
    ) -> Result<Cart, ShopError>;
    async fn checkout(&self, customer: String) -> Result<Order, ShopError>;
    async fn order(&self, id: OrderId) -> Result<Order, ShopError>;
    async fn orders(&self, customer: String) -> Vec<Order>;
    async fn suggestions(&self, customer: String) -> Result<Vec<Item>, ShopError>;
    async fn balance(&self, customer: String) -> Result<Option<Cents>, ShopError>;
    /// Asks the suggestions platform to run the scripted attack.
    async fn attack(&self, amount: Cents) -> Result<String, ShopError>;
}
