//! The shop's HTTP+JSON front end and its web page. Every handler is one
//! call of the `UserApi` service on this platform: the HTTP layer holds no
//! state and no security; the service calls behind it carry the API
//! platform's roles.

use std::net::SocketAddr;

use axum::extract::{FromRequestParts, Path, RawPathParams, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use jadeite::CallError;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::services::{ItemId, OrderId, ShopError, UserApiClient};

const PAGE: &str = include_str!("page.html");

/// Largest request body read (a quantity is a few bytes).
const MAX_BODY: usize = 4 * 1024;

#[derive(Debug, Deserialize)]
struct Quantity {
    quantity: u32,
}

#[derive(Debug, Deserialize)]
struct Amount {
    cents: u64,
}

#[derive(Debug, Serialize)]
struct Failure {
    error: String,
}

/// A `UserApi` outcome as an HTTP response: shop errors are the client's
/// (4xx) or a dependency's (503); call errors are ours (502/503).
fn respond<T: Serialize>(outcome: Result<Result<T, ShopError>, CallError>) -> Response {
    match outcome {
        Ok(Ok(value)) => Json(value).into_response(),
        Ok(Err(error)) => {
            let status = match error {
                ShopError::EmptyCart | ShopError::Stock(_) => StatusCode::CONFLICT,
                ShopError::NoSuchOrder(_) => StatusCode::NOT_FOUND,
                ShopError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                ShopError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            (
                status,
                Json(Failure {
                    error: error.to_string(),
                }),
            )
                .into_response()
        }
        Err(error) => (
            StatusCode::BAD_GATEWAY,
            Json(Failure {
                error: error.to_string(),
            }),
        )
            .into_response(),
    }
}

fn always<T>(outcome: Result<T, CallError>) -> Result<Result<T, ShopError>, CallError> {
    outcome.map(Ok)
}

/// A customer name in a path that is not one.
#[derive(Debug)]
struct BadCustomer;

impl IntoResponse for BadCustomer {
    fn into_response(self) -> Response {
        (
            StatusCode::BAD_REQUEST,
            Json(Failure {
                error: "a customer is 1 to 32 letters or digits".to_owned(),
            }),
        )
            .into_response()
    }
}

/// The `{customer}` of a path: a short name of letters and digits (it names
/// carts and orders), checked before any handler runs.
#[derive(Debug)]
struct Customer(String);

impl<S: Send + Sync> FromRequestParts<S> for Customer {
    type Rejection = BadCustomer;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| BadCustomer)?;
        let name = params
            .iter()
            .find(|(key, _)| *key == "customer")
            .map(|(_, value)| value)
            .ok_or(BadCustomer)?;
        if (1..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(Self(name.to_owned()))
        } else {
            Err(BadCustomer)
        }
    }
}

pub fn router(api: UserApiClient) -> Router {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route(
            "/api/catalogue",
            get(|State(api): State<UserApiClient>| async move { respond(api.catalogue().await) }),
        )
        .route(
            "/api/cart/{customer}",
            get(
                |State(api): State<UserApiClient>, Customer(name): Customer| async move {
                    respond(always(api.cart(name).await))
                },
            ),
        )
        .route(
            "/api/cart/{customer}/{item}",
            put(
                |State(api): State<UserApiClient>,
                 Customer(name): Customer,
                 Path((_, item)): Path<(String, ItemId)>,
                 Json(body): Json<Quantity>| async move {
                    respond(api.set_in_cart(name, item, body.quantity).await)
                },
            ),
        )
        .route(
            "/api/checkout/{customer}",
            post(
                |State(api): State<UserApiClient>, Customer(name): Customer| async move {
                    respond(api.checkout(name).await)
                },
            ),
        )
        .route(
            "/api/orders/{customer}",
            get(
                |State(api): State<UserApiClient>, Customer(name): Customer| async move {
                    respond(always(api.orders(name).await))
                },
            ),
        )
        .route(
            "/api/order/{id}",
            get(
                |State(api): State<UserApiClient>, Path(id): Path<OrderId>| async move {
                    respond(api.order(id).await)
                },
            ),
        )
        .route(
            "/api/suggestions/{customer}",
            get(
                |State(api): State<UserApiClient>, Customer(name): Customer| async move {
                    respond(api.suggestions(name).await)
                },
            ),
        )
        .route(
            "/api/balance/{customer}",
            get(
                |State(api): State<UserApiClient>, Customer(name): Customer| async move {
                    respond(api.balance(name).await)
                },
            ),
        )
        .route(
            "/api/attack",
            post(
                |State(api): State<UserApiClient>, Json(body): Json<Amount>| async move {
                    respond(api.attack(body.cents).await)
                },
            ),
        )
        .route("/api/health", get(|| async { Json(json!({"ok": true})) }))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(api)
}

/// Serves the shop on `address` until the task is dropped; returns the
/// address bound (with the real port if 0 was asked for).
pub async fn serve(
    address: SocketAddr,
    api: UserApiClient,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let app = router(api);
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "HTTP server stopped");
        }
    });
    Ok((bound, task))
}
