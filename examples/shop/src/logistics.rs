//! The logistics platform's components: the warehouse (catalogue, stock,
//! reservations) and shipping. Both keep their state in memory: a restart
//! of the platform starts from the initial catalogue with no shipments.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jadeite::Component;

use crate::services::{
    Item, ItemId, Line, OrderId, Shipment, ShipmentStatus, Shipping, StockError, Warehouse,
};

/// What the shop sells when the warehouse starts.
const CATALOGUE: &[(ItemId, &str, u64, u32)] = &[
    (1, "Cast-iron teapot", 4_900, 12),
    (2, "Sencha, 100 g", 1_250, 40),
    (3, "Assam, 250 g", 1_590, 30),
    (4, "Bamboo whisk", 1_800, 15),
    (5, "Glass cups (set of 4)", 2_400, 20),
    (6, "Tea towel", 890, 25),
];

#[derive(Debug)]
pub struct Depot {
    state: Mutex<DepotState>,
}

#[derive(Debug)]
struct DepotState {
    items: BTreeMap<ItemId, Item>,
    /// Reservation name -> (item, units held).
    reservations: HashMap<String, (ItemId, u32)>,
}

impl Default for Depot {
    fn default() -> Self {
        let items = CATALOGUE
            .iter()
            .map(|&(id, name, price, available)| {
                (
                    id,
                    Item {
                        id,
                        name: name.to_owned(),
                        price,
                        available,
                    },
                )
            })
            .collect();
        Self {
            state: Mutex::new(DepotState {
                items,
                reservations: HashMap::new(),
            }),
        }
    }
}

impl Depot {
    fn state(&self) -> std::sync::MutexGuard<'_, DepotState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Component for Depot {}

impl Warehouse for Depot {
    async fn catalogue(&self) -> Vec<Item> {
        self.state().items.values().cloned().collect()
    }

    async fn stock(&self, item: ItemId) -> Option<u32> {
        self.state().items.get(&item).map(|i| i.available)
    }

    async fn reserve(
        &self,
        reservation: String,
        item: ItemId,
        quantity: u32,
    ) -> Result<Item, StockError> {
        if quantity == 0 {
            return Err(StockError::ZeroQuantity);
        }
        let mut state = self.state();
        let DepotState {
            items,
            reservations,
        } = &mut *state;
        let held = match reservations.get(&reservation) {
            Some(&(held_item, units)) if held_item == item => units,
            Some(_) | None => 0,
        };
        let entry = items.get_mut(&item).ok_or(StockError::UnknownItem(item))?;
        if entry.available + held < quantity {
            return Err(StockError::OutOfStock {
                item,
                available: entry.available + held,
            });
        }
        entry.available = entry.available + held - quantity;
        let reserved = entry.clone();
        if let Some((other, units)) = reservations.insert(reservation, (item, quantity))
            && other != item
            && let Some(previous) = items.get_mut(&other)
        {
            previous.available += units;
        }
        Ok(reserved)
    }

    async fn release(&self, reservation: String) -> bool {
        let mut state = self.state();
        let Some((item, units)) = state.reservations.remove(&reservation) else {
            return false;
        };
        if let Some(entry) = state.items.get_mut(&item) {
            entry.available += units;
        }
        true
    }
}

/// How long a shipment is packed, then in transit, in this demo.
const PACKING: Duration = Duration::from_secs(3);
const IN_TRANSIT: Duration = Duration::from_secs(8);

#[derive(Debug, Default)]
pub struct Dispatch {
    shipments: Mutex<HashMap<OrderId, (Shipment, Instant)>>,
}

impl Dispatch {
    fn with_status((shipment, created): &(Shipment, Instant)) -> Shipment {
        let age = created.elapsed();
        let status = if age < PACKING {
            ShipmentStatus::Packing
        } else if age < IN_TRANSIT {
            ShipmentStatus::InTransit
        } else {
            ShipmentStatus::Delivered
        };
        Shipment {
            status,
            ..shipment.clone()
        }
    }
}

impl Component for Dispatch {}

impl Shipping for Dispatch {
    async fn create(&self, order: OrderId, customer: String, lines: Vec<Line>) -> Shipment {
        let mut shipments = self.shipments.lock().unwrap_or_else(|p| p.into_inner());
        let entry = shipments.entry(order).or_insert_with(|| {
            tracing::info!(order, %customer, "shipment created");
            (
                Shipment {
                    order,
                    customer,
                    lines,
                    status: ShipmentStatus::Packing,
                },
                Instant::now(),
            )
        });
        Self::with_status(entry)
    }

    async fn status(&self, order: OrderId) -> Option<Shipment> {
        let shipments = self.shipments.lock().unwrap_or_else(|p| p.into_inner());
        shipments.get(&order).map(Self::with_status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_hold_and_give_back_stock() {
        let depot = Depot::default();
        let start = depot.stock(1).await.expect("item 1");
        let held = depot
            .reserve("cart:a:1".into(), 1, 3)
            .await
            .expect("in stock");
        assert_eq!(held.available, start - 3);
        // Repeating the same reservation changes nothing; changing it adjusts.
        depot.reserve("cart:a:1".into(), 1, 3).await.expect("same");
        assert_eq!(depot.stock(1).await, Some(start - 3));
        depot.reserve("cart:a:1".into(), 1, 1).await.expect("fewer");
        assert_eq!(depot.stock(1).await, Some(start - 1));
        assert_eq!(
            depot.reserve("cart:b:1".into(), 1, start).await,
            Err(StockError::OutOfStock {
                item: 1,
                available: start - 1
            })
        );
        assert!(depot.release("cart:a:1".into()).await);
        assert!(!depot.release("cart:a:1".into()).await);
        assert_eq!(depot.stock(1).await, Some(start));
        assert_eq!(
            depot.reserve("x".into(), 99, 1).await,
            Err(StockError::UnknownItem(99))
        );
    }

    #[tokio::test]
    async fn shipments_are_created_once_per_order() {
        let dispatch = Dispatch::default();
        let line = vec![Line {
            item: 1,
            quantity: 1,
        }];
        let first = dispatch.create(7, "alice".into(), line.clone()).await;
        let again = dispatch.create(7, "bob".into(), Vec::new()).await;
        assert_eq!(first.customer, "alice");
        assert_eq!(again.customer, "alice", "the first shipment stands");
        assert_eq!(dispatch.status(7).await.map(|s| s.lines), Some(line));
        assert_eq!(dispatch.status(8).await, None);
    }
}
