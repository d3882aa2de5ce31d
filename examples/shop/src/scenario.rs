//! `shop --scenario`: a scripted session against a freshly made shop, one
//! line per step, through the same HTTP API the web page uses. It browses,
//! orders, pays, ships and suggests; kills the logistics platform in the
//! middle of the second order and brings it back; has the suggestions
//! platform try to charge a customer (refused: it holds no `checkout`
//! role); restarts the API platform and finds the orders still there.

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api::money;
use crate::client::Client;
use crate::launcher::Shop;
use crate::services::{Cart, Cents, Item, Order, OrderState};

/// Longest any step waits for the shop to settle.
const SETTLE: Duration = Duration::from_secs(45);

type Step<T> = Result<T, String>;

/// Counts and prints the steps.
struct Steps(usize);

impl Steps {
    /// Prints the step's line; a failure ends the scenario.
    fn take(&mut self, outcome: Step<String>) -> Result<(), String> {
        match outcome {
            Ok(line) => {
                self.0 += 1;
                println!("step {:>2} ok   {line}", self.0);
                Ok(())
            }
            Err(error) => {
                println!("step {:>2} FAIL {error}", self.0 + 1);
                Err(error)
            }
        }
    }
}

/// Runs the scenario; the number of steps, all of which succeeded, or the
/// first failure (no later step runs).
pub async fn run(shop: &mut Shop) -> Result<usize, String> {
    let mut steps = Steps(0);
    let client = Client::new(&shop.url)?;

    steps.take(ready(&client).await)?;
    let catalogue: Vec<Item> = client.get("/api/catalogue").await?.ok()?;
    steps.take(browse(&catalogue))?;

    let start = balance(&client, "alice").await?;
    steps.take(first_order(&client, &catalogue).await)?;
    let after_first = balance(&client, "alice").await?;
    steps.take(check(
        start > after_first,
        format!(
            "pay: alice's balance went from {} to {}",
            money(start),
            money(after_first)
        ),
    ))?;
    steps.take(bob_orders(&client).await)?;
    steps.take(suggest(&client, &catalogue).await)?;

    // The second order: the logistics platform dies in the middle of it.
    steps.take(fill_cart(&client, "alice", 3, 1).await)?;
    shop.stop_one("logistics").await;
    steps.take(Ok(
        "fault: the logistics platform (warehouse, shipping) is killed".to_owned(),
    ))?;
    let order = checkout(&client, "alice").await?;
    steps.take(check(
        order.state == OrderState::ShippingPending,
        format!(
            "order: alice checks out order {} while logistics is down: paid, shipping pending",
            order.id
        ),
    ))?;
    let charged = balance(&client, "alice").await?;
    steps.take(
        shop.start_one("logistics").await.map(|()| {
            "recover: the logistics platform is started again from its config".to_owned()
        }),
    )?;
    steps.take(shipped_later(&client, order.id).await)?;
    steps.take(not_charged_twice(&client, after_first, charged, order.total).await)?;

    steps.take(attack(&client, charged).await)?;
    steps.take(
        shop.start_one("api")
            .await
            .map(|()| "restart: the API platform is killed and started again".to_owned()),
    )?;
    let client = Client::new(&shop.url)?;
    ready(&client).await?;
    steps.take(orders_survive(&client).await)?;
    Ok(steps.0)
}

fn check(condition: bool, line: String) -> Step<String> {
    if condition {
        Ok(line)
    } else {
        Err(format!("not so: {line}"))
    }
}

/// Retries `attempt` until it succeeds or `SETTLE` passes.
async fn eventually<T, F: Future<Output = Step<T>>>(mut attempt: impl FnMut() -> F) -> Step<T> {
    let deadline = Instant::now() + SETTLE;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) if Instant::now() >= deadline => return Err(error),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn ready(client: &Client) -> Step<String> {
    eventually(|| async {
        let page = client.get("/").await?;
        if page.status != 200
            || !page
                .body
                .as_str()
                .is_some_and(|p| p.contains("Jadeite tea shop"))
        {
            return Err("the web page is not served".to_owned());
        }
        client.get("/api/catalogue").await?.ok::<Vec<Item>>()?;
        client
            .get("/api/balance/alice")
            .await?
            .ok::<Option<Cents>>()?;
        client
            .get("/api/suggestions/alice")
            .await?
            .ok::<Vec<Item>>()?;
        Ok("ready: the page is served; warehouse, payment and suggestion answer".to_owned())
    })
    .await
    .map_err(|e| format!("ready: {e}"))
}

fn browse(catalogue: &[Item]) -> Step<String> {
    let names: Vec<&str> = catalogue.iter().map(|i| i.name.as_str()).collect();
    check(
        !catalogue.is_empty(),
        format!("browse: {} items: {}", catalogue.len(), names.join(", ")),
    )
}

async fn balance(client: &Client, customer: &str) -> Step<Cents> {
    client
        .get(&format!("/api/balance/{customer}"))
        .await?
        .ok::<Option<Cents>>()?
        .ok_or_else(|| format!("{customer} has no account"))
}

async fn orders(client: &Client, customer: &str) -> Step<Vec<Order>> {
    client.get(&format!("/api/orders/{customer}")).await?.ok()
}

async fn fill_cart(client: &Client, customer: &str, item: u32, quantity: u32) -> Step<String> {
    let cart: Cart = client
        .put(
            &format!("/api/cart/{customer}/{item}"),
            &json!({ "quantity": quantity }),
        )
        .await?
        .ok()?;
    check(
        cart.lines
            .iter()
            .any(|l| l.item == item && l.quantity == quantity),
        format!(
            "cart: {customer} has {} line(s), {} in all (stock reserved)",
            cart.lines.len(),
            money(cart.total)
        ),
    )
}

async fn checkout(client: &Client, customer: &str) -> Step<Order> {
    client
        .post(&format!("/api/checkout/{customer}"), &Value::Null)
        .await?
        .ok()
}

async fn first_order(client: &Client, catalogue: &[Item]) -> Step<String> {
    let teapot = catalogue.first().ok_or("an empty catalogue")?;
    fill_cart(client, "alice", teapot.id, 1).await?;
    fill_cart(client, "alice", 2, 2).await?;
    let order = checkout(client, "alice").await?;
    let line = format!(
        "order: alice checks out order {} ({} lines, {}): {:?}",
        order.id,
        order.lines.len(),
        money(order.total),
        order.state
    );
    check(order.state == OrderState::Shipped, line)
}

async fn bob_orders(client: &Client) -> Step<String> {
    fill_cart(client, "bob", 2, 1).await?;
    fill_cart(client, "bob", 4, 1).await?;
    let order = checkout(client, "bob").await?;
    check(
        order.state == OrderState::Shipped,
        format!("ship: bob's order {} is paid and shipped", order.id),
    )
}

async fn suggest(client: &Client, catalogue: &[Item]) -> Step<String> {
    let suggested: Vec<Item> = client.get("/api/suggestions/alice").await?.ok()?;
    let whisk = catalogue.iter().find(|i| i.id == 4).ok_or("no item 4")?;
    check(
        suggested.first().map(|i| i.id) == Some(4),
        format!(
            "suggest: alice is offered {:?} (bob bought it with the sencha alice bought)",
            whisk.name
        ),
    )
}

async fn shipped_later(client: &Client, id: u64) -> Step<String> {
    eventually(|| async {
        let order: Order = client.get(&format!("/api/order/{id}")).await?.ok()?;
        match order.state {
            OrderState::Shipped => Ok(format!(
                "ship: order {id} is shipped once logistics is back ({:?})",
                order.shipment
            )),
            other => Err(format!("order {id} is still {other:?}")),
        }
    })
    .await
}

async fn not_charged_twice(
    client: &Client,
    before: Cents,
    after_checkout: Cents,
    total: Cents,
) -> Step<String> {
    let now = balance(client, "alice").await?;
    let alice = orders(client, "alice").await?;
    check(
        before - after_checkout == total && now == after_checkout && alice.len() == 2,
        format!(
            "no loss, no double charge: alice has {} orders and was charged {} once for the second (balance {})",
            alice.len(),
            money(total),
            money(now)
        ),
    )
}

async fn attack(client: &Client, balance_before: Cents) -> Step<String> {
    let outcome: String = client
        .post("/api/attack", &json!({ "cents": 10_000 }))
        .await?
        .ok()?;
    let after = balance(client, "alice").await?;
    check(
        outcome.contains("missing role checkout") && after == balance_before,
        format!("attack: the suggestions platform tries to charge alice 100.00: {outcome}"),
    )
}

async fn orders_survive(client: &Client) -> Step<String> {
    let alice = orders(client, "alice").await?;
    let shipped = alice
        .iter()
        .filter(|o| o.state == OrderState::Shipped)
        .count();
    check(
        alice.len() == 2 && shipped == 2,
        format!(
            "persist: after the restart alice's {} orders are still there, {shipped} shipped",
            alice.len()
        ),
    )
}
