use jadeite::service::ServiceInterface;
use jadeite::{Access, CallContext, Component, service};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Receipt {
    pub order: u64,
}

#[service(roles = ["checkout"], name = "shop.Payment")]
pub trait Payment {
    /// Charges an order.
    async fn charge(&self, cx: &CallContext, order: u64, cents: u64) -> Result<Receipt, String>;
    #[roles("admin", "auditor")]
    async fn refund(&self, order: u64) -> bool;
    #[unrestricted]
    async fn currencies(&self) -> Vec<String>;
    async fn ping(&self);
}

#[service]
trait Empty {}

struct Till;

impl Component for Till {}

impl Payment for Till {
    async fn charge(&self, cx: &CallContext, order: u64, _cents: u64) -> Result<Receipt, String> {
        if cx.has_role("checkout") {
            Ok(Receipt { order })
        } else {
            Err("no".to_owned())
        }
    }
    async fn refund(&self, _order: u64) -> bool {
        true
    }
    async fn currencies(&self) -> Vec<String> {
        Vec::new()
    }
    async fn ping(&self) {}
}

impl Empty for Till {}

fn main() {
    assert_eq!(PaymentClient::NAME, "shop.Payment");
    let rules: Vec<Access> = PaymentClient::METHODS.iter().map(|m| m.access).collect();
    assert_eq!(
        rules,
        [
            Access::AnyRole(&["checkout"]),
            Access::AnyRole(&["admin", "auditor"]),
            Access::Unrestricted,
            Access::AnyRole(&["checkout"]),
        ]
    );
    assert_eq!(EmptyClient::METHODS.len(), 0);
    fn provides<S: jadeite::service::ServiceDispatch<Till>>() {}
    provides::<PaymentServer>();
    provides::<EmptyServer>();
}
