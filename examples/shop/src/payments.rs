//! The payments platform's component: per-customer balances, charged and
//! refunded at most once per order id. Only callers holding `checkout` get
//! here (the rule is on the `Payment` trait); the method still logs who
//! called, from the call context.

use std::collections::HashMap;
use std::sync::Mutex;

use jadeite::{CallContext, Component};

use crate::services::{Cents, OrderId, Payment, PaymentError, Receipt};

/// The customers of the demo and what they start with.
pub const CUSTOMERS: &[(&str, Cents)] = &[("alice", 25_000), ("bob", 8_000), ("carol", 1_500)];

#[derive(Debug)]
pub struct Till {
    state: Mutex<TillState>,
}

#[derive(Debug)]
struct TillState {
    balances: HashMap<String, Cents>,
    charges: HashMap<OrderId, Charge>,
}

#[derive(Debug)]
struct Charge {
    receipt: Receipt,
    refunded: bool,
}

impl Default for Till {
    fn default() -> Self {
        Self {
            state: Mutex::new(TillState {
                balances: CUSTOMERS
                    .iter()
                    .map(|&(name, cents)| (name.to_owned(), cents))
                    .collect(),
                charges: HashMap::new(),
            }),
        }
    }
}

impl Till {
    fn state(&self) -> std::sync::MutexGuard<'_, TillState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Component for Till {}

impl Payment for Till {
    async fn charge(
        &self,
        cx: &CallContext,
        order: OrderId,
        customer: String,
        amount: Cents,
    ) -> Result<Receipt, PaymentError> {
        tracing::info!(
            order,
            %customer,
            amount,
            caller = %cx.caller_platform(),
            roles = ?cx.roles(),
            "charge"
        );
        let mut state = self.state();
        if let Some(charge) = state.charges.get(&order) {
            let receipt = &charge.receipt;
            return if receipt.customer == customer && receipt.amount == amount {
                Ok(receipt.clone())
            } else {
                Err(PaymentError::Conflict(order))
            };
        }
        let balance = state
            .balances
            .get_mut(&customer)
            .ok_or_else(|| PaymentError::UnknownCustomer(customer.clone()))?;
        if *balance < amount {
            return Err(PaymentError::InsufficientFunds {
                balance: *balance,
                needed: amount,
            });
        }
        *balance -= amount;
        let receipt = Receipt {
            order,
            customer,
            amount,
            balance: *balance,
        };
        state.charges.insert(
            order,
            Charge {
                receipt: receipt.clone(),
                refunded: false,
            },
        );
        Ok(receipt)
    }

    async fn refund(&self, order: OrderId) -> bool {
        let mut state = self.state();
        let TillState { balances, charges } = &mut *state;
        let Some(charge) = charges.get_mut(&order).filter(|c| !c.refunded) else {
            return false;
        };
        charge.refunded = true;
        if let Some(balance) = balances.get_mut(&charge.receipt.customer) {
            *balance += charge.receipt.amount;
        }
        true
    }

    async fn balance(&self, customer: String) -> Option<Cents> {
        self.state().balances.get(&customer).copied()
    }
}
