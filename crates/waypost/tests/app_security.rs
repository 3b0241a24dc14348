//! `AppSecurity` hands a handler the security the serving app enforces: a session started and a
//! token issued through it are the ones the front layer accepts afterwards, with the app's own
//! default security (`App::new`) as with one given by `App::with_security`; and outside an app
//! with security it is a 500 in the one error shape, not a panic.

use std::sync::Arc;

use reqwest::{header, Client};
use serde_json::{json, Value};
use waypost::{
    axum::{extract::Request, http::StatusCode, response::Response, Router},
    response,
    routing::{self, HandlerInfo, Method, RouteInfo, RouteMethods},
    security::{AppSecurity, Caller, Security, SecuritySettings},
    testing::{TestClient, TestServer},
    ApiError, App, RouteConfig,
};

static LOGIN: RouteInfo = RouteInfo::at(
    &["/login"],
    &[HandlerInfo::of(Method::Post)],
    RouteConfig::new(),
);
static ME: RouteInfo = RouteInfo::at(
    &["/me"],
    &[HandlerInfo::of(Method::Get)],
    RouteConfig::new(),
);

/// Signs in user `u-1`: a session cookie and a bearer token, both from the app's security.
async fn login(security: AppSecurity) -> Result<Response, ApiError> {
    let cookie = security.start_session("u-1", None).await?;
    let token = security.jwt().issue("u-1")?;
    let mut answer = response::json(StatusCode::OK, json!({ "token": token }));
    response::set_cookie(&mut answer, &cookie);
    Ok(answer)
}

/// Who is calling, or 401.
async fn me(request: Request) -> Result<String, ApiError> {
    let identity = Caller::of(request.extensions()).required()?;
    Ok(identity.user_id.to_string())
}

fn router() -> Router {
    let router = RouteMethods::new(&LOGIN).post(login).mount(Router::new());
    RouteMethods::new(&ME)
        .get(me)
        .mount(router)
        .fallback(routing::not_found_fallback)
}

/// Logs in on `server`, then asks `/me` with the token and, apart, with the cookie.
async fn signed_in_both_ways(server: &TestServer) {
    let client = Client::new();
    let login = client.post(server.url("/login")).send().await.unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("session="), "{cookie}");
    let token = login.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let by_token = client
        .get(server.url("/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(by_token.status(), 200);
    assert_eq!(by_token.text().await.unwrap(), "u-1");
    let by_cookie = client
        .get(server.url("/me"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 200);
    assert_eq!(by_cookie.text().await.unwrap(), "u-1");
    let anonymous = client.get(server.url("/me")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn credentials_issued_through_it_are_the_ones_the_app_accepts() {
    // The app's own default security: nothing shared by hand.
    let server = TestServer::start(App::new(router())).await;
    signed_in_both_ways(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn it_is_the_security_the_app_was_given() {
    let given = Arc::new(Security::new(SecuritySettings::default()).unwrap());
    let server = TestServer::start(App::new(router()).with_security(given.clone())).await;
    signed_in_both_ways(&server).await;
    // The session went into the given instance's store.
    let login = Client::new()
        .post(server.url("/login"))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    let id = cookie
        .strip_prefix("session=")
        .and_then(|rest| rest.split(';').next())
        .unwrap();
    assert_eq!(
        given.session_user(id).await.unwrap().as_deref(),
        Some("u-1")
    );
    server.stop().await;
}

#[tokio::test]
async fn outside_an_app_with_security_it_is_a_500_in_the_one_shape() {
    // The router alone, without the front layer: there is no security to hand out.
    let client = TestClient::new(App::new(router()));
    let through_app = client.post("/login").send().await;
    assert_eq!(
        through_app.status(),
        200,
        "the in-process client serves the app"
    );

    let bare = router();
    let response = tower::ServiceExt::oneshot(
        bare,
        waypost::axum::http::Request::post("/login")
            .body(waypost::axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 500);
    let body = waypost::axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["code"], "internal_error");
    assert!(
        !body.to_string().contains("AppSecurity"),
        "nothing internal leaks"
    );
}
