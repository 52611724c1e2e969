//! Login, sessions, CSRF and roles.
//!
//! A session is a random token in a cookie (`HttpOnly; SameSite=Strict; Secure` unless `http.secure_cookies` is
//! off; `Path=/`); the database keeps only its SHA-256. Each session has its own CSRF token, which every form carries
//! and every POST handler checks ([`CurrentUser::check_csrf`]). The login form, before any session exists, uses a
//! double-submit cookie.

use axum::Form;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::{AppState, WebError, pages};
use crate::accounts;
use crate::clock::Clock;
use crate::store::Role;

pub const SESSION_COOKIE: &str = "hearth_session";
pub const LOGIN_CSRF_COOKIE: &str = "hearth_login_csrf";

/// The logged-in user of a request.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub username: String,
    pub role: Role,
    pub csrf: String,
    token_hash: String,
}

impl CurrentUser {
    /// 403 unless `sent` is this session's CSRF token.
    pub fn check_csrf(&self, sent: &str) -> Result<(), WebError> {
        if bool::from(sent.as_bytes().ct_eq(self.csrf.as_bytes())) {
            Ok(())
        } else {
            tracing::warn!(user = %self.username, "CSRF token mismatch");
            Err(WebError::Forbidden("bad CSRF token"))
        }
    }

    /// 403 unless a nurse.
    pub fn require_nurse(&self) -> Result<(), WebError> {
        if self.role == Role::Nurse {
            Ok(())
        } else {
            Err(WebError::Forbidden("nurses only"))
        }
    }
}

/// What a request without a valid session gets: the login page for a page view, 401 otherwise.
pub enum AuthRejection {
    ToLogin,
    Unauthorized,
    Internal,
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            AuthRejection::ToLogin => Redirect::to("/login").into_response(),
            AuthRejection::Unauthorized => WebError::Unauthorized.into_response(),
            AuthRejection::Internal => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }
}

/// The value of cookie `name` in the request's `Cookie` headers. Hand-parsed: two cookies of our own, both
/// hex tokens, do not justify a cookie-jar crate.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let reject = if parts.method == Method::GET && !parts.uri.path().starts_with("/fhir") {
            AuthRejection::ToLogin
        } else {
            AuthRejection::Unauthorized
        };
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(reject);
        };
        let hash = accounts::token_hash(&token);
        match state.store.session(&hash, state.clock.now_ms()).await {
            Ok(Some(s)) => Ok(CurrentUser {
                username: s.username,
                role: s.role.parse().map_err(|_| AuthRejection::Internal)?,
                csrf: s.csrf,
                token_hash: hash,
            }),
            Ok(None) => Err(reject),
            Err(e) => {
                tracing::error!(error = %e, "session lookup failed");
                Err(AuthRejection::Internal)
            }
        }
    }
}

fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    path: &str,
    max_age_s: i64,
) -> HeaderValue {
    let secure = if state.cfg.http.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let v = format!(
        "{name}={value}; HttpOnly; SameSite=Strict; Path={path}; Max-Age={max_age_s}{secure}"
    );
    // Tokens are hex and names are ours: always a valid header value.
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub async fn login_form(State(state): State<AppState>) -> Response {
    let token = accounts::random_token();
    let mut resp = pages::login_page(&token, None).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, LOGIN_CSRF_COOKIE, &token, "/login", 3600),
    );
    resp
}

#[derive(Deserialize)]
pub struct LoginForm {
    pub username: String,
    pub password: String,
    pub csrf: String,
}

pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(f.csrf.as_bytes())) {
        return WebError::Forbidden("bad CSRF token").into_response();
    }
    let now = state.clock.now_ms();
    let user = match state.store.user(&f.username).await {
        Ok(u) => u,
        Err(e) => return WebError::from(e).into_response(),
    };
    // Verify against a dummy hash when the user is unknown, so timing does not tell which usernames exist.
    let ok = match &user {
        Some((_, hash)) => accounts::verify_password(&f.password, hash),
        None => {
            accounts::verify_password(&f.password, accounts::dummy_hash());
            false
        }
    };
    if !ok {
        let _ = state
            .store
            .audit(
                now,
                &f.username.chars().take(64).collect::<String>(),
                "login.failed",
                None,
                "",
            )
            .await;
        let token = accounts::random_token();
        let mut resp = (
            StatusCode::UNAUTHORIZED,
            pages::login_page(&token, Some("Wrong username or password.")),
        )
            .into_response();
        resp.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(&state, LOGIN_CSRF_COOKIE, &token, "/login", 3600),
        );
        return resp;
    }
    let token = accounts::random_token();
    let csrf = accounts::random_token();
    let hours = i64::from(state.cfg.http.session_hours);
    let expires = now + hours * 3_600_000;
    if let Err(e) = state
        .store
        .create_session(
            &accounts::token_hash(&token),
            &f.username,
            &csrf,
            now,
            expires,
        )
        .await
    {
        return WebError::from(e).into_response();
    }
    let _ = state.store.audit(now, &f.username, "login", None, "").await;
    let mut resp = Redirect::to("/").into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, &token, "/", hours * 3600),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(&state, LOGIN_CSRF_COOKIE, "", "/login", 0),
    );
    resp
}

#[derive(Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    user: CurrentUser,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    user.check_csrf(&f.csrf)?;
    state.store.delete_session(&user.token_hash).await?;
    state
        .store
        .audit(state.clock.now_ms(), &user.username, "logout", None, "")
        .await?;
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", "/", 0),
    );
    Ok(resp)
}
