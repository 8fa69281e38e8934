//! The router: `/api/v1` (messages, conversations, modems, health, events, webhook
//! deliveries, the OpenAPI document), `/healthz`, `/readyz`, `/metrics` and the dashboard.
//!
//! Every handler is one or two store calls; the JSON shapes are the store's rows (the
//! `messages` columns keep their SQL names, times are RFC 3339). The OpenAPI document in
//! `assets/openapi.json` describes exactly these routes (a test checks that).

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use conductor_store::{
    DeliveryFilter, DeliveryState, Direction, IdempotencyKey, ListFilter, Message, MessageId,
    ModemId, ModemStatus, NewOutbound, QueueOutcome, Status, StorageUse,
};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth;
use crate::error::ApiError;
use crate::json;

/// The OpenAPI 3 document served at `/api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("../assets/openapi.json");

/// Most messages one `POST /messages/batch` may carry.
pub const MAX_BATCH: usize = 1000;

/// Most rows one page of a listing returns.
pub const MAX_PAGE: usize = 500;

/// Builds the whole application.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/messages", post(send).get(list))
        .route("/messages/batch", post(send_batch))
        .route("/messages/estimate", post(estimate))
        .route("/messages/{id}", get(show))
        .route("/messages/{id}/read", post(mark_read))
        .route("/messages/{id}/requeue", post(requeue))
        .route("/messages/{id}/cancel", post(cancel))
        .route("/conversations/{number}", get(conversation))
        .route("/modems", get(modems))
        .route("/modems/{id}", get(modem))
        .route("/modems/{id}/ussd", post(ussd))
        .route("/health", get(health))
        .route("/stats", get(stats))
        .route("/events", get(crate::events::stream))
        .route("/webhooks/deliveries", get(deliveries))
        .route("/openapi.json", get(openapi))
        .fallback(api_not_found);
    let limit = state.config().body_limit;
    let timeout = state.config().request_timeout;
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::metrics::metrics))
        .merge(crate::dashboard::routes())
        .layer(middleware::from_fn_with_state(state.clone(), auth::require))
        .layer(middleware::from_fn_with_state(timeout, time_limit))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Answers 503 when a handler takes longer than the configured request timeout.
async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("the request took longer than {limit:?}; try again"),
        )
        .into_response(),
    }
}

async fn api_not_found(request: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route {} {}; see /api/v1/openapi.json",
        request.method(),
        request.uri().path()
    ))
}

async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI,
    )
        .into_response()
}

// --- sending ---------------------------------------------------------------------------------

/// The body of `POST /messages`, one item of a batch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SendRequest {
    to: String,
    text: String,
    #[serde(default)]
    modem: Option<String>,
    #[serde(default)]
    status_report: Option<bool>,
    #[serde(default)]
    flash: Option<bool>,
    #[serde(default)]
    validity: Option<String>,
    #[serde(default)]
    send_at: Option<String>,
    #[serde(default)]
    allow_duplicate: Option<bool>,
    /// Higher goes first; default 0.
    #[serde(default)]
    priority: Option<i64>,
    /// RFC 3339: still queued then, the message becomes `expired`.
    #[serde(default)]
    expires_at: Option<String>,
    /// Sent even to a number on the block list and in quiet hours.
    #[serde(default)]
    transactional: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRequest {
    messages: Vec<SendRequest>,
}

/// Checks one request and turns it into a row to queue; `at` prefixes field names.
fn validate(state: &AppState, at: &str, r: SendRequest) -> Result<NewOutbound, ApiError> {
    let field = |name: &str| format!("{at}{name}");
    if r.text.is_empty() {
        return Err(ApiError::invalid(field("text"), "the text is empty"));
    }
    // The same rules the gateway applies to rows written with SQL (issue 11).
    let to = match state.config().sending.check(&r.to, &r.text) {
        Ok((to, _)) => to,
        Err(conductor_store::policy::Refusal::To(reason)) => {
            return Err(ApiError::invalid(field("to"), reason));
        }
        Err(conductor_store::policy::Refusal::Text(reason)) => {
            return Err(ApiError::invalid(field("text"), reason));
        }
    };
    if let Err(e) = conductor_sms::Address::parse_phone_number(&to)
        && !state.config().sending.numbers.allow_alphanumeric
    {
        return Err(ApiError::invalid(
            field("to"),
            format!("{:?} is not a phone number: {e}", r.to),
        ));
    }
    match conductor_sms::split_text(&r.text) {
        Ok(split) if split.parts.len() <= conductor_sms::MAX_PARTS => {}
        Ok(_) | Err(_) => {
            return Err(ApiError::invalid(
                field("text"),
                format!(
                    "the text needs more than {} SMS parts, the most one message can have",
                    conductor_sms::MAX_PARTS
                ),
            ));
        }
    }
    if let Some(modem) = &r.modem {
        let known = &state.config().modems;
        if modem.trim().is_empty() || (!known.is_empty() && !known.contains(modem)) {
            return Err(ApiError::invalid(
                field("modem"),
                format!("no modem {modem:?}; configured: {}", known.join(", ")),
            ));
        }
    }
    if r.flash == Some(true) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported",
            "flash (class 0) messages are not supported by this gateway yet",
        )
        .field(field("flash")));
    }
    if r.validity.is_some() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported",
            "a per-message validity is not supported yet; the gateway uses outbound.validity \
             from the config",
        )
        .field(field("validity")));
    }
    let send_at = match &r.send_at {
        None => None,
        Some(text) => Some(text.parse::<Timestamp>().map_err(|e| {
            ApiError::invalid(
                field("send_at"),
                format!("{text:?} is not an RFC 3339 time with an offset: {e}"),
            )
        })?),
    };
    let expires_at = match &r.expires_at {
        None => None,
        Some(text) => Some(text.parse::<Timestamp>().map_err(|e| {
            ApiError::invalid(
                field("expires_at"),
                format!("{text:?} is not an RFC 3339 time with an offset: {e}"),
            )
        })?),
    };
    Ok(NewOutbound {
        to,
        text: r.text,
        modem_id: r.modem.map(ModemId),
        source: "api".into(),
        allow_duplicate: r.allow_duplicate.unwrap_or(false),
        status_report: r.status_report,
        send_at,
        priority: r.priority.unwrap_or(0),
        expires_at,
        transactional: r.transactional.unwrap_or(false),
    })
}

/// The body, or a JSON error (413 when it is over the limit).
fn read_body(state: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "the body is larger than the {} bytes allowed (http.body_limit_kib)",
                    state.config().body_limit
                ),
            )
        } else {
            ApiError::new(rejection.status(), "bad_request", rejection.body_text())
        }
    })
}

fn idempotency_key(
    state: &AppState,
    headers: &HeaderMap,
    route: &str,
    body: &Bytes,
) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            ApiError::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters")
                .field("Idempotency-Key")
        })?;
    let mut request = route.as_bytes().to_vec();
    request.push(b'\n');
    request.extend_from_slice(body);
    Ok(Some(IdempotencyKey {
        key: key.to_owned(),
        request_hash: auth::hex(&auth::sha256(&request)),
        expired_before: crate::server::expiry_cutoff(state),
    }))
}

/// Queues and answers with the rows as stored (201; 200 with `Idempotent-Replayed: true` for
/// a retry).
async fn queue(
    state: &AppState,
    rows: Vec<NewOutbound>,
    key: Option<IdempotencyKey>,
) -> Result<(bool, Vec<Message>), ApiError> {
    let outcome = state
        .store()
        .queue_outbound_batch(rows, key, state.now())
        .await?;
    let (replayed, ids) = match outcome {
        QueueOutcome::Queued(ids) => {
            state.wake();
            (false, ids)
        }
        QueueOutcome::Replayed(ids) => (true, ids),
        QueueOutcome::KeyConflict => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
            )
            .field("Idempotency-Key"));
        }
    };
    let mut messages = Vec::with_capacity(ids.len());
    for id in ids {
        let detail = state.store().message(id).await?;
        messages.extend(detail.map(|d| d.message));
    }
    Ok((replayed, messages))
}

fn created(replayed: bool, body: Value) -> Response {
    let status = if replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut response = (status, Json(body)).into_response();
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

async fn send(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = read_body(&state, body)?;
    let request: SendRequest = json::parse(&headers, &body)?;
    let row = validate(&state, "", request)?;
    let key = idempotency_key(&state, &headers, "POST /messages", &body)?;
    let (replayed, mut messages) = queue(&state, vec![row], key).await?;
    let message = messages
        .pop()
        .ok_or_else(|| ApiError::internal("the queued message could not be read back"))?;
    Ok(created(replayed, json!(message)))
}

/// The body of `POST /messages/estimate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EstimateRequest {
    text: String,
    #[serde(default)]
    to: Option<String>,
}

/// What a text would cost, before sending it: parts and encoding after transliteration (as
/// the gateway will send it), and whether `outbound.max_parts` or the recipient refuses it.
async fn estimate(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = read_body(&state, body)?;
    let request: EstimateRequest = json::parse(&headers, &body)?;
    let rules = &state.config().sending;
    let to = match &request.to {
        None => None,
        Some(to) => Some(
            conductor_store::policy::normalize_recipient(to, &rules.numbers)
                .map_err(|e| ApiError::invalid("to", e.to_string()))?,
        ),
    };
    let estimate = conductor_store::policy::estimate(&request.text, rules.transliterate)
        .map_err(|e| ApiError::invalid("text", e))?;
    let refused = rules
        .max_parts
        .and_then(|max| conductor_store::policy::too_many_parts(&estimate, max));
    Ok(Json(json!({
        "to": to,
        "parts": estimate.parts,
        "encoding": estimate.encoding,
        "characters": estimate.characters,
        "transliterated": estimate.replaced > 0,
        "replaced": estimate.replaced,
        "text": estimate.text,
        "max_parts": rules.max_parts,
        "refused": refused,
    }))
    .into_response())
}

async fn send_batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = read_body(&state, body)?;
    let request: BatchRequest = json::parse(&headers, &body)?;
    if request.messages.is_empty() {
        return Err(ApiError::invalid("messages", "the batch is empty"));
    }
    if request.messages.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "messages",
            format!("at most {MAX_BATCH} messages per batch"),
        ));
    }
    // Every item is checked before any is queued: a bad item 900 leaves nothing queued.
    let rows = request
        .messages
        .into_iter()
        .enumerate()
        .map(|(i, r)| validate(&state, &format!("messages[{i}]."), r))
        .collect::<Result<Vec<_>, _>>()?;
    let key = idempotency_key(&state, &headers, "POST /messages/batch", &body)?;
    let (replayed, messages) = queue(&state, rows, key).await?;
    Ok(created(replayed, json!({ "messages": messages })))
}

// --- reading ---------------------------------------------------------------------------------

/// A page of messages and the cursor for the next (older) one.
#[derive(Debug, Serialize)]
struct Page {
    messages: Vec<Message>,
    /// Pass as `before` for the next page; null on the last page.
    next_cursor: Option<i64>,
}

/// Reads the listing filters from the query; unknown parameters are refused by name.
fn filter_from(params: &[(String, String)], allowed_number: bool) -> Result<ListFilter, ApiError> {
    let mut filter = ListFilter {
        limit: 50,
        ..ListFilter::default()
    };
    for (key, value) in params {
        let bad = |message: String| ApiError::bad_request(message).field(key.clone());
        let time = |value: &str| {
            value.parse::<Timestamp>().map_err(|e| {
                bad(format!(
                    "{value:?} is not an RFC 3339 time (2024-03-01T12:00:00Z): {e}"
                ))
            })
        };
        match key.as_str() {
            "direction" => {
                filter.direction = Some(value.parse::<Direction>().map_err(|e| bad(e.to_string()))?)
            }
            "status" => {
                filter.status = Some(value.parse::<Status>().map_err(|e| bad(e.to_string()))?)
            }
            "number" if allowed_number => filter.number = Some(value.clone()),
            "modem" => filter.modem_id = Some(ModemId(value.clone())),
            "since" => filter.since = Some(time(value)?),
            "until" => filter.until = Some(time(value)?),
            "q" => filter.text_contains = Some(value.clone()).filter(|q| !q.is_empty()),
            "before" => {
                filter.before_id = Some(MessageId(value.parse().map_err(|_| {
                    bad(format!(
                        "{value:?} is not a message id (the previous page's next_cursor)"
                    ))
                })?))
            }
            "limit" => filter.limit = page_limit(value).map_err(bad)?,
            "access_token" => {}
            _ => return Err(bad(format!("unknown query parameter {key:?}"))),
        }
    }
    Ok(filter)
}

async fn page(state: &AppState, filter: ListFilter) -> Result<Page, ApiError> {
    let limit = filter.limit;
    let messages = state.store().list(filter).await?;
    let next_cursor = (messages.len() == limit)
        .then(|| messages.last().map(|m| m.id.0))
        .flatten();
    Ok(Page {
        messages,
        next_cursor,
    })
}

async fn list(
    State(state): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Page>, ApiError> {
    let filter = filter_from(&params, true)?;
    Ok(Json(page(&state, filter).await?))
}

async fn conversation(
    State(state): State<AppState>,
    Path(number): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let mut filter = filter_from(&params, false)?;
    filter.number = Some(number.clone());
    let page = page(&state, filter).await?;
    Ok(Json(json!({
        "number": conductor_store::normalize_number(&number),
        "messages": page.messages,
        "next_cursor": page.next_cursor,
    })))
}

fn message_id(raw: &str) -> Result<MessageId, ApiError> {
    raw.parse::<i64>()
        .map(MessageId)
        .map_err(|_| ApiError::bad_request(format!("{raw:?} is not a message id")).field("id"))
}

async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = message_id(&id)?;
    match state.store().message(id).await? {
        Some(detail) => Ok(Json(detail).into_response()),
        None => Err(ApiError::not_found(format!("message #{id} does not exist"))),
    }
}

async fn current(state: &AppState, id: MessageId) -> Result<Json<Message>, ApiError> {
    state
        .store()
        .message(id)
        .await?
        .map(|d| Json(d.message))
        .ok_or_else(|| ApiError::not_found(format!("message #{id} does not exist")))
}

async fn mark_read(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Message>, ApiError> {
    let id = message_id(&id)?;
    let changed = state.store().mark_read(vec![id], state.now()).await?;
    let message = current(&state, id).await?;
    if changed.is_empty() && message.status != Status::Read {
        return Err(ApiError::conflict(
            "wrong_status",
            format!(
                "message #{id} is {} {}; only unread inbound messages can be marked read",
                message.direction, message.status
            ),
        ));
    }
    Ok(message)
}

async fn requeue(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Message>, ApiError> {
    let id = message_id(&id)?;
    state.store().requeue(id, state.now()).await?;
    state.wake();
    current(&state, id).await
}

async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Message>, ApiError> {
    let id = message_id(&id)?;
    state.store().cancel(id, state.now()).await?;
    current(&state, id).await
}

// --- modems and health -----------------------------------------------------------------------

/// `POST /modems/{id}/ussd` with `{"code": "*100#"}`: runs the code on the modem through the
/// daemon, which owns the port (a full-scope token: it costs the SIM's owner a network
/// request, and some codes change things).
async fn ussd(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    let code = body
        .get("code")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::invalid("code", "`code` is required, e.g. \"*100#\""))?;
    let Some(runner) = state.ussd() else {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "no_gateway",
            "no gateway runs in this process: start `conductor run`, or run `conductor ussd` \
             on the machine with the modem while no daemon holds its port",
        ));
    };
    match runner(id, code.to_owned()).await {
        Ok(answer) => Ok(Json(answer)),
        Err(crate::UssdFailure::UnknownModem(message)) => Err(ApiError::not_found(message)),
        Err(crate::UssdFailure::Modem(message)) => Err(ApiError::new(
            axum::http::StatusCode::BAD_GATEWAY,
            "modem_error",
            message,
        )),
    }
}

/// A modem as the API shows it: its status row plus what is derived from it.
#[derive(Debug, Serialize)]
pub(crate) struct ModemView {
    id: String,
    /// `starting`, `ready`, `degraded`, `down`, or `unknown` (configured, no row yet).
    state: String,
    /// The row is older than `modem_stale_after`: the daemon is not updating it.
    stale: bool,
    /// Ready and fresh: it can send now.
    ready: bool,
    /// Several nodes on PostgreSQL: the node holding the modem's live lease (null on SQLite,
    /// or while no node holds it).
    node: Option<String>,
    /// The row's `storage` with percentages and the `used/total (x.x % full)` text.
    sim_storage: Vec<StorageView>,
    #[serde(flatten)]
    row: Option<ModemStatus>,
}

#[derive(Debug, Serialize)]
struct StorageView {
    memory: String,
    used: u32,
    total: u32,
    percent: f64,
    /// `used/total (x.x % full)`.
    display: String,
}

impl From<&StorageUse> for StorageView {
    fn from(s: &StorageUse) -> Self {
        Self {
            memory: s.memory.clone(),
            used: s.used,
            total: s.total,
            percent: if s.total == 0 {
                0.0
            } else {
                (f64::from(s.used) * 1000.0 / f64::from(s.total)).round() / 10.0
            },
            display: s.display(),
        }
    }
}

/// Every configured modem and every modem with a status row, by id.
pub(crate) async fn modem_views(state: &AppState) -> Result<Vec<ModemView>, ApiError> {
    let rows = state.store().modem_statuses().await?;
    let now = state.now();
    let leases = state.store().leases().await?;
    let node_of = |id: &str| {
        leases
            .iter()
            .find(|l| l.modem.0 == id && l.is_live(now))
            .map(|l| l.node.clone())
    };
    let stale_after = state.config().modem_stale_after;
    let mut views: Vec<ModemView> = rows
        .into_iter()
        .map(|row| {
            let age = row
                .updated_at
                .timestamp()
                .map(|t| now.duration_since(t).unsigned_abs());
            let stale = age.is_none_or(|age| age > stale_after);
            let ready = !stale && row.state == conductor_store::ModemState::Ready;
            ModemView {
                id: row.modem_id.0.clone(),
                node: node_of(&row.modem_id.0),
                state: row.state.as_str().to_owned(),
                stale,
                ready,
                sim_storage: row.storage.iter().map(StorageView::from).collect(),
                row: Some(row),
            }
        })
        .collect();
    for id in &state.config().modems {
        if !views.iter().any(|v| &v.id == id) {
            views.push(ModemView {
                id: id.clone(),
                node: node_of(id),
                state: "unknown".into(),
                stale: true,
                ready: false,
                sim_storage: Vec::new(),
                row: None,
            });
        }
    }
    views.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(views)
}

impl ModemView {
    pub(crate) fn id(&self) -> &str {
        &self.id
    }
    pub(crate) fn is_ready(&self) -> bool {
        self.ready
    }
    pub(crate) fn row(&self) -> Option<&ModemStatus> {
        self.row.as_ref()
    }
}

async fn modems(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let nodes = conductor_store::by_node(&state.store().leases().await?, state.now());
    Ok(Json(
        json!({ "modems": modem_views(&state).await?, "nodes": nodes }),
    ))
}

async fn modem(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ModemView>, ApiError> {
    modem_views(&state)
        .await?
        .into_iter()
        .find(|m| m.id == id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no modem {id:?}")))
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready while the database answers and at least one modem can send (DESIGN.md "Health").
async fn readyz(State(state): State<AppState>) -> Response {
    let (status, body) = match modem_views(&state).await {
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "not_ready", "reason": format!("database: {}", e.message) }),
        ),
        Ok(views) => {
            let ready: Vec<&str> = views
                .iter()
                .filter(|v| v.ready)
                .map(|v| v.id.as_str())
                .collect();
            if ready.is_empty() {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({ "status": "not_ready", "reason": "no modem is ready (or its status row is stale)" }),
                )
            } else {
                (
                    StatusCode::OK,
                    json!({ "status": "ready", "modems_ready": ready }),
                )
            }
        }
    };
    (status, Json(body)).into_response()
}

/// Every check, as `health` prints them: 200 when all pass, else 503.
async fn health(State(state): State<AppState>) -> Response {
    let mut checks = Vec::new();
    let mut healthy = true;
    match state.store().check_writable().await {
        Ok(()) => checks.push(json!({ "name": "database", "ok": true, "detail": "takes writes" })),
        Err(e) => {
            healthy = false;
            checks.push(json!({ "name": "database", "ok": false, "detail": e.to_string() }));
        }
    }
    match modem_views(&state).await {
        Ok(views) => {
            if views.is_empty() {
                healthy = false;
                checks.push(
                    json!({ "name": "modems", "ok": false, "detail": "no modem has reported yet" }),
                );
            }
            for view in views {
                let detail = if view.ready {
                    match &view.node {
                        Some(node) => format!("ready (node {node})"),
                        None => "ready".to_owned(),
                    }
                } else if view.stale {
                    format!("{} (status row stale: is the daemon running?)", view.state)
                } else {
                    let error = view.row.as_ref().and_then(|r| r.last_error.clone());
                    match error {
                        Some(error) => format!("{}: {error}", view.state),
                        None => view.state.clone(),
                    }
                };
                healthy &= view.ready;
                checks.push(json!({ "name": format!("modem {}", view.id), "ok": view.ready, "detail": detail }));
            }
        }
        Err(e) => {
            healthy = false;
            checks.push(json!({ "name": "modems", "ok": false, "detail": e.message }));
        }
    }
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    // Active alert episodes (conductor-ops): shown, not counted in the status.
    let alerts = state.store().active_alerts().await.unwrap_or_default();
    // Several nodes on PostgreSQL: each node and the modems it holds (empty on SQLite).
    let nodes = conductor_store::by_node(
        &state.store().leases().await.unwrap_or_default(),
        state.now(),
    );
    (
        status,
        Json(
            json!({ "status": if healthy { "ok" } else { "unhealthy" }, "checks": checks, "alerts": alerts, "nodes": nodes }),
        ),
    )
        .into_response()
}

// --- charts ----------------------------------------------------------------------------------

/// Volume per hour (last 24 h) or day (last 30 days), and delivery success, for the
/// dashboard's charts.
async fn stats(
    State(state): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let mut by_day = false;
    for (key, value) in &params {
        match (key.as_str(), value.as_str()) {
            ("bucket", "hour") => by_day = false,
            ("bucket", "day") => by_day = true,
            ("bucket", other) => {
                return Err(ApiError::bad_request(format!(
                    "{other:?} is not a bucket (hour or day)"
                ))
                .field("bucket"));
            }
            ("access_token", _) => {}
            _ => {
                return Err(
                    ApiError::bad_request(format!("unknown query parameter {key:?}"))
                        .field(key.clone()),
                );
            }
        }
    }
    let span = if by_day {
        jiff::SignedDuration::from_hours(24 * 30)
    } else {
        jiff::SignedDuration::from_hours(24)
    };
    let now = state.now();
    let since = now.checked_sub(span).unwrap_or(now);
    let rows = state.store().volume(since, by_day).await?;
    let mut series: Vec<Value> = Vec::new();
    let (mut delivered, mut failed, mut sent) = (0u64, 0u64, 0u64);
    for row in rows {
        if series
            .last()
            .is_none_or(|last| last["bucket"] != row.bucket.as_str())
        {
            series.push(json!({
                "bucket": row.bucket, "inbound": 0, "outbound": 0, "delivered": 0, "failed": 0
            }));
        }
        let Some(entry) = series.last_mut() else {
            continue;
        };
        let mut add = |key: &str, n: u64| {
            entry[key] = json!(entry[key].as_u64().unwrap_or(0) + n);
        };
        add(row.direction.as_str(), row.count);
        match row.status {
            Status::Delivered => {
                add("delivered", row.count);
                delivered += row.count;
            }
            Status::Failed => {
                add("failed", row.count);
                failed += row.count;
            }
            Status::Sent => sent += row.count,
            _ => {}
        }
    }
    let finished = delivered + failed;
    let success_rate = if finished == 0 {
        Value::Null
    } else {
        json!(delivered as f64 / finished as f64)
    };
    Ok(Json(json!({
        "bucket": if by_day { "day" } else { "hour" },
        "since": since.to_string(),
        "series": series,
        "delivery": {
            "delivered": delivered,
            "failed": failed,
            "sent_awaiting_report": sent,
            "success_rate": success_rate,
        },
    })))
}

// --- webhooks --------------------------------------------------------------------------------

async fn deliveries(
    State(state): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let mut filter = DeliveryFilter {
        limit: 50,
        ..DeliveryFilter::default()
    };
    for (key, value) in &params {
        let bad = |message: String| ApiError::bad_request(message).field(key.clone());
        match key.as_str() {
            "endpoint" => filter.endpoint = Some(value.clone()),
            "state" => {
                filter.state = Some(DeliveryState::parse(value).ok_or_else(|| {
                    bad(format!(
                        "{value:?} is not a state (pending, delivered, failed)"
                    ))
                })?)
            }
            "before" => {
                filter.before_id = Some(
                    value
                        .parse()
                        .map_err(|_| bad(format!("{value:?} is not a delivery id")))?,
                )
            }
            "limit" => filter.limit = page_limit(value).map_err(bad)?,
            "access_token" => {}
            _ => return Err(bad(format!("unknown query parameter {key:?}"))),
        }
    }
    let limit = filter.limit;
    let rows = state.store().webhook_deliveries(filter).await?;
    let next_cursor = (rows.len() == limit)
        .then(|| rows.last().map(|d| d.id))
        .flatten();
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|d| {
            let payload: Value = serde_json::from_str(&d.payload).unwrap_or(Value::Null);
            let mut v = json!(d);
            v["payload"] = payload;
            v
        })
        .collect();
    Ok(Json(
        json!({ "deliveries": rows, "next_cursor": next_cursor }),
    ))
}

/// A `limit` query parameter: a page of 1 to [`MAX_PAGE`] rows; the error text names what
/// is wrong, for the caller to attach to the field.
fn page_limit(value: &str) -> Result<usize, String> {
    let n: usize = value
        .parse()
        .map_err(|_| format!("{value:?} is not a number"))?;
    if n == 0 || n > MAX_PAGE {
        return Err(format!("limit must be 1 to {MAX_PAGE}"));
    }
    Ok(n)
}
