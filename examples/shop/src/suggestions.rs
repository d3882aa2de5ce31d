//! The suggestions platform's components: suggestions from purchase
//! history, and the scripted attack. This platform holds the `shop` role
//! only: it is trusted as part of the shop, but it cannot prove `checkout`,
//! so the payment service refuses it whatever its code tries.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};

use jadeite::{CallError, Component, ComponentContext, Platform, Scope};

use crate::services::{Cents, Intrusion, ItemId, PaymentClient, Suggestion};

#[derive(Debug, Default)]
pub struct Advisor {
    history: Mutex<HashMap<String, BTreeSet<ItemId>>>,
}

impl Component for Advisor {}

impl Suggestion for Advisor {
    async fn record_purchase(&self, customer: String, items: Vec<ItemId>) {
        let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        history.entry(customer).or_default().extend(items);
    }

    async fn suggest(&self, customer: String, limit: u32) -> Vec<ItemId> {
        let history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let own = history.get(&customer).cloned().unwrap_or_default();
        // Score each item by how many other customers bought it together
        // with something `customer` bought; without history, by popularity.
        let mut scores: BTreeMap<ItemId, usize> = BTreeMap::new();
        for (_, bought) in history.iter().filter(|(name, _)| **name != customer) {
            if own.is_empty() || !bought.is_disjoint(&own) {
                for item in bought.difference(&own) {
                    *scores.entry(*item).or_default() += 1;
                }
            }
        }
        let mut ranked: Vec<(ItemId, usize)> = scores.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked
            .into_iter()
            .map(|(item, _)| item)
            .take(limit as usize)
            .collect()
    }
}

/// An order id the shop never uses, so the attack cannot collide with one.
const ATTACK_ORDER: u64 = u64::MAX;

/// Plays a compromised suggestions platform: it finds the payment service
/// and tries to charge a customer.
#[derive(Debug, Default)]
pub struct Burglar {
    platform: OnceLock<Platform>,
}

impl Component for Burglar {
    async fn started(&self, context: &ComponentContext) {
        let _ = self.platform.set(context.platform().clone());
    }
}

impl Intrusion for Burglar {
    async fn try_charge(&self, customer: String, amount: Cents) -> String {
        let Some(platform) = self.platform.get() else {
            return "not started".to_owned();
        };
        let Some(target) = platform
            .search::<PaymentClient>(Scope::Global)
            .into_iter()
            .next()
        else {
            return "no payment service in sight".to_owned();
        };
        let payment: PaymentClient = platform.client(target);
        match payment.charge(ATTACK_ORDER, customer.clone(), amount).await {
            Err(error @ CallError::AccessDenied { .. }) => format!("refused: {error}"),
            Err(other) => format!("failed: {other}"),
            Ok(Ok(receipt)) => format!(
                "CHARGED {} cents to {customer}: the defence did not hold",
                receipt.amount
            ),
            Ok(Err(refusal)) => format!("reached the payment service, which said {refusal:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn suggestions_come_from_shared_purchases() {
        let advisor = Advisor::default();
        advisor.record_purchase("alice".into(), vec![1, 2]).await;
        advisor.record_purchase("bob".into(), vec![2, 3, 4]).await;
        advisor.record_purchase("carol".into(), vec![2, 4]).await;
        advisor.record_purchase("dave".into(), vec![5]).await;
        // Bob and Carol share item 2 with Alice; 4 is in both their carts.
        assert_eq!(advisor.suggest("alice".into(), 5).await, vec![4, 3]);
        assert_eq!(advisor.suggest("alice".into(), 1).await, vec![4]);
        // Without history: what is popular.
        assert_eq!(advisor.suggest("erin".into(), 2).await, vec![2, 4]);
    }
}
