//! Server-rendered pages (maud escapes every interpolated value). Accessibility: a skip link, landmarks, real
//! buttons and labelled form fields, table captions and header scopes, severity as text (not only colour), visible
//! focus, an `aria-live` region announcing queue updates, and colours at WCAG AA contrast or better.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Html;
use hearth_protocol::json::format_rfc3339_millis;
use maud::{DOCTYPE, Markup, html};

use super::auth::CurrentUser;
use super::{AppState, WebError, charts};
use crate::clock::Clock;
use crate::store::{AlertRow, Role};

/// Most rows in the queue page.
pub const QUEUE_LIMIT: i64 = 500;
const DAY_MS: i64 = 86_400_000;

/// Served at `/static/app.css` (a stylesheet of our own origin keeps the Content-Security-Policy strict).
pub const CSS: &str = r#"
body{font-family:system-ui,sans-serif;margin:0;color:#111;background:#fff;line-height:1.4}
a{color:#0645ad}a:focus,button:focus,input:focus,select:focus,summary:focus{outline:3px solid #ff8c00;outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:#fff;padding:4px;z-index:9}
header{background:#0b3d91;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
header a{color:#fff}header a[aria-current=page]{font-weight:bold;text-decoration:underline}
header form{margin-left:auto}main{padding:16px}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #999;padding:6px;text-align:left;vertical-align:top}
caption{text-align:left;font-weight:bold;padding:4px 0}
.sev{font-weight:bold;padding:2px 6px;border-radius:3px;border:1px solid #111}
.sev-high{background:#b00020;color:#fff}.sev-medium{background:#ffb000;color:#111}.sev-low{background:#e6f0ff;color:#111}
tr.snoozed,tr.acked{color:#444;background:#f3f3f3}
button{font:inherit;padding:4px 10px;border:1px solid #0b3d91;background:#0b3d91;color:#fff;border-radius:3px;cursor:pointer}
button.secondary{background:#fff;color:#0b3d91}
label{display:block;font-weight:600;margin-top:6px}input,select{font:inherit;padding:3px}
.muted{color:#444}.error{color:#b00020;font-weight:bold}
figure.chart{margin:0 0 20px 0;max-width:700px}figure.chart figcaption{font-weight:bold}
dl.sbard dt{font-weight:bold}dl.sbard dd{margin:0 0 4px 0}
.silent{color:#b00020;font-weight:bold}
"#;

/// Served at `/static/queue.js`: live refresh of the queue over Server-Sent Events.
pub const QUEUE_JS: &str = r#"
(function(){
  var rows=document.getElementById('queue-rows'); if(!rows||!window.EventSource) return;
  var status=document.getElementById('queue-status');
  function refresh(){
    fetch('/queue/rows',{credentials:'same-origin'}).then(function(r){
      if(r.status===401){location.href='/login';return;} return r.text();
    }).then(function(t){
      if(t===undefined) return;
      var focused=document.activeElement&&document.activeElement.id;
      rows.innerHTML=t;
      var n=rows.querySelectorAll('tr[data-alert]').length;
      status.textContent='Queue updated: '+n+' open incident'+(n===1?'':'s')+'.';
      if(focused){var f=document.getElementById(focused); if(f) f.focus();}
    });
  }
  var es=new EventSource('/events'); window.hearthEvents=es;
  ['alerts','homes','reload'].forEach(function(e){es.addEventListener(e,refresh);});
  // Catch up on whatever changed between rendering the page and (re)connecting.
  es.addEventListener('open',refresh);
})();
"#;

fn html_page(
    title: &str,
    user: Option<&CurrentUser>,
    current: &str,
    body: Markup,
    script: Option<&str>,
) -> Html<String> {
    // `script` is the URL of a script of our own.
    let m = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — Hearth community hub" }
                link rel="stylesheet" href="/static/app.css";
            }
            body {
                a.skip href="#main" { "Skip to main content" }
                header {
                    strong { "Hearth" }
                    @if let Some(u) = user {
                        nav aria-label="Main" {
                            a href="/" aria-current=[(current == "queue").then_some("page")] { "Caseload queue" }
                            " · "
                            a href="/homes" aria-current=[(current == "homes").then_some("page")] { "Homes" }
                        }
                        form method="post" action="/logout" {
                            span { (u.username) " (" (u.role.as_str()) ") " }
                            input type="hidden" name="csrf" value=(u.csrf);
                            button.secondary type="submit" { "Log out" }
                        }
                    }
                }
                main id="main" tabindex="-1" { (body) }
                @if let Some(src) = script { script src=(src) {} }
            }
        }
    };
    Html(m.into_string())
}

pub fn error_page(status: StatusCode, text: &str) -> Html<String> {
    html_page(
        status.canonical_reason().unwrap_or("Error"),
        None,
        "",
        html! { h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) } p.error role="alert" { (text) } p { a href="/" { "Back to the queue" } } },
        None,
    )
}

pub fn login_page(csrf: &str, error: Option<&str>) -> Html<String> {
    html_page(
        "Log in",
        None,
        "",
        html! {
            h1 { "Log in" }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                label for="username" { "Username" }
                input id="username" name="username" autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required;
                p { button id="login" type="submit" { "Log in" } }
            }
        },
        None,
    )
}

/// "5 min", "3 h 10 min", "2 d 4 h".
pub fn age(now: i64, t: i64) -> String {
    let m = ((now - t).max(0)) / 60_000;
    match m {
        0..60 => format!("{m} min"),
        60..1440 => format!("{} h {} min", m / 60, m % 60),
        _ => format!("{} d {} h", m / 1440, (m % 1440) / 60),
    }
}

fn time(now: i64, t: i64) -> Markup {
    let iso = format_rfc3339_millis(t);
    html! { time datetime=(iso) title=(iso) { (age(now, t)) " ago" } }
}

fn severity(sev: &str) -> Markup {
    html! { span class=(format!("sev sev-{sev}")) { (sev.to_uppercase()) } }
}

fn news2_cell(a: &AlertRow) -> Markup {
    html! {
        @match (a.news2_total, a.news2_band.as_deref()) {
            (Some(t), Some(b)) => { strong { (t) } " (" (b) ")" }
            (Some(t), None) => { strong { (t) } }
            _ => { span.muted { "—" } }
        }
    }
}

fn trigger(a: &AlertRow) -> Markup {
    html! {
        div { code { (a.rule) } }
        @if let (Some(code), Some(v)) = (a.code.as_deref(), a.value) {
            div { (code) " " (v) " " (a.unit.as_deref().unwrap_or("")) }
        }
        div.muted { (a.message) }
    }
}

/// The SBARD handover (`details.sbard`) if the home sent one; otherwise the other details, as they are.
pub fn summary(details: Option<&str>) -> Markup {
    let d: serde_json::Value = details
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default();
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    html! {
        @match &d["sbard"] {
            serde_json::Value::Object(m) => {
                dl.sbard {
                    @for (k, v) in m { dt { (k) } dd { (text(v)) } }
                }
            }
            serde_json::Value::Null => {
                @if let Some(m) = d.as_object() {
                    @let others: Vec<_> = m.iter().filter(|(k, _)| k.as_str() != "news2").collect();
                    @if !others.is_empty() {
                        dl.sbard { @for (k, v) in others { dt { (k) } dd { (text(v)) } } }
                    }
                }
            }
            other => { p { (text(other)) } }
        }
    }
}

fn status(now: i64, a: &AlertRow) -> Markup {
    html! {
        div { (a.state) }
        @if let Some(by) = &a.acked_by { div { "Acknowledged by " (by) } }
        @if let Some(to) = &a.assignee { div { "Assigned to " (to) } }
        @if let Some(until) = a.snoozed_until.filter(|u| *u > now) {
            div { "Snoozed until " (format_rfc3339_millis(until)[11..16].to_string()) " UTC"
                @if let Some(r) = &a.snooze_reason { ": " (r) } }
        }
    }
}

/// The queue's table rows (also served alone for live refresh).
pub fn rows(now: i64, user: &CurrentUser, alerts: &[AlertRow]) -> Markup {
    html! {
        @if alerts.is_empty() {
            tr { td colspan="8" { "No open incidents." } }
        }
        @for a in alerts {
            @let snoozed = a.snoozed_until.is_some_and(|u| u > now);
            @let acked = a.acked_by.is_some() || a.state == "acknowledged";
            tr data-alert=(a.id) data-state=(a.state) class=(match (snoozed, acked) { (true, _) => "snoozed", (_, true) => "acked", _ => "" }) {
                td { (severity(&a.severity)) }
                td { a href=(format!("/patients/{}", a.patient)) { (a.patient) } div.muted { (a.home) } }
                td { (news2_cell(a)) }
                td { (trigger(a)) }
                td { (summary(a.details.as_deref())) }
                td { (time(now, a.first_raised_at)) }
                td { (status(now, a)) }
                td {
                    @if user.role == Role::Nurse && !acked {
                        form method="post" action=(format!("/alerts/{}/actions", a.id)) {
                            input type="hidden" name="csrf" value=(user.csrf);
                            input type="hidden" name="action" value="acknowledge";
                            input type="hidden" name="back" value="queue";
                            button type="submit" id=(format!("ack-{}", a.id)) aria-label=(format!("Acknowledge alert for patient {}", a.patient)) { "Acknowledge" }
                        }
                    }
                    a href=(format!("/alerts/{}", a.id)) aria-label=(format!("Open incident for patient {}", a.patient)) {
                        @if user.role == Role::Nurse { "More actions" } @else { "View" }
                    }
                }
            }
        }
    }
}

pub async fn queue(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Html<String>, WebError> {
    let now = state.clock.now_ms();
    let alerts = state.store.queue(now, QUEUE_LIMIT).await?;
    let open = state.store.open_count().await?;
    let body = html! {
        h1 { "Caseload queue" }
        @if open > alerts.len() as i64 {
            p role="note" { "Showing the " (alerts.len()) " highest-priority of " (open) " open incidents." }
        }
        p { "Open incidents, highest priority first: severity, then NEWS2, then the longest waiting. Updates live." }
        p id="queue-status" role="status" aria-live="polite" { (alerts.len()) " open incidents." }
        table {
            caption { "Open incidents" }
            thead { tr {
                th scope="col" { "Priority" } th scope="col" { "Patient" } th scope="col" { "NEWS2" }
                th scope="col" { "Trigger" } th scope="col" { "Summary (SBARD)" } th scope="col" { "Waiting" }
                th scope="col" { "Status" } th scope="col" { "Actions" }
            } }
            tbody id="queue-rows" { (rows(now, &user, &alerts)) }
        }
    };
    Ok(html_page(
        "Caseload queue",
        Some(&user),
        "queue",
        body,
        Some("/static/queue.js"),
    ))
}

pub async fn queue_rows(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Html<String>, WebError> {
    let now = state.clock.now_ms();
    let alerts = state.store.queue(now, QUEUE_LIMIT).await?;
    Ok(Html(rows(now, &user, &alerts).into_string()))
}

fn action_forms(user: &CurrentUser, a: &AlertRow) -> Markup {
    let action = format!("/alerts/{}/actions", a.id);
    html! {
        h2 { "Actions" }
        form method="post" action=(action) {
            input type="hidden" name="csrf" value=(user.csrf);
            input type="hidden" name="action" value="acknowledge";
            input type="hidden" name="back" value="alert";
            button type="submit" id="act-acknowledge" { "Acknowledge (I've got this)" }
        }
        form method="post" action=(action) {
            fieldset { legend { "Assign" }
                input type="hidden" name="csrf" value=(user.csrf);
                input type="hidden" name="action" value="assign";
                input type="hidden" name="back" value="alert";
                label for="assignee" { "Assign to (team member)" }
                input id="assignee" name="assignee" required maxlength="500";
                button type="submit" { "Assign" }
            }
        }
        form method="post" action=(action) {
            fieldset { legend { "Snooze escalation" }
                input type="hidden" name="csrf" value=(user.csrf);
                input type="hidden" name="action" value="snooze";
                input type="hidden" name="back" value="alert";
                label for="snooze-reason" { "Reason" }
                input id="snooze-reason" name="reason" required maxlength="500";
                label for="snooze-minutes" { "For how long (minutes, up to 1440)" }
                input id="snooze-minutes" name="snooze_minutes" type="number" min="1" max="1440" value="60" required;
                button type="submit" { "Snooze" }
            }
        }
        form method="post" action=(action) {
            fieldset { legend { "Resolve" }
                input type="hidden" name="csrf" value=(user.csrf);
                input type="hidden" name="action" value="resolve";
                input type="hidden" name="back" value="alert";
                label for="outcome" { "Outcome" }
                input id="outcome" name="reason" required maxlength="500" list="outcomes";
                datalist id="outcomes" {
                    option value="Visited, managed at home" {} option value="Phoned, advice given" {}
                    option value="Referred to GP" {} option value="Admitted to hospital" {} option value="False alarm" {}
                }
                button type="submit" { "Resolve" }
            }
        }
    }
}

pub async fn alert(
    State(state): State<AppState>,
    Path(id): Path<String>,
    user: CurrentUser,
) -> Result<Html<String>, WebError> {
    let now = state.clock.now_ms();
    let a = state.store.alert(&id).await?.ok_or(WebError::NotFound)?;
    let audit = state.store.audit_log(Some(&id), 100).await?;
    let details: serde_json::Value = a
        .details
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default();
    let body = html! {
        h1 { "Incident for patient " a href=(format!("/patients/{}", a.patient)) { (a.patient) } }
        dl {
            dt { "Priority" } dd { (severity(&a.severity)) }
            dt { "NEWS2" } dd { (news2_cell(&a)) }
            dt { "Trigger" } dd { (trigger(&a)) }
            dt { "Home" } dd { (a.home) }
            dt { "Raised" } dd { (time(now, a.first_raised_at)) " (latest revision " (a.rev) ", " (time(now, a.raised_at)) ")" }
            dt { "Status" } dd { (status(now, &a)) @if let Some(o) = &a.outcome { div { "Outcome: " (o) } } }
        }
        h2 { "Summary (SBARD)" }
        (summary(a.details.as_deref()))
        @if let Some(subs) = details["news2"]["subscores"].as_array() {
            table {
                caption { "NEWS2 breakdown" }
                thead { tr { th scope="col" { "Parameter" } th scope="col" { "Value" } th scope="col" { "Score" } th scope="col" { "Observed" } } }
                tbody { @for s in subs { tr {
                    td { (s["parameter"].as_str().unwrap_or("")) } td { (s["value"].to_string().trim_matches('"')) }
                    td { (s["score"]) } td { (s["observed_at"].as_str().unwrap_or("")) }
                } } }
            }
        }
        @if user.role == Role::Nurse && a.is_open == 1 { (action_forms(&user, &a)) }
        table {
            caption { "Audit trail" }
            thead { tr { th scope="col" { "When (UTC)" } th scope="col" { "Who" } th scope="col" { "What" } th scope="col" { "Detail" } } }
            tbody { @for e in &audit { tr { td { (format_rfc3339_millis(e.at)) } td { (e.actor) } td { (e.action) } td { (e.detail) } } } }
        }
    };
    Ok(html_page("Incident", Some(&user), "", body, None))
}

pub async fn patient(
    State(state): State<AppState>,
    Path(id): Path<String>,
    user: CurrentUser,
) -> Result<Html<String>, WebError> {
    let now = state.clock.now_ms();
    let from = now - 7 * DAY_MS;
    let revisions = state.store.patient_revisions(&id, from).await?;
    let alerts = state.store.patient_alerts(&id, 200).await?;
    if revisions.is_empty() && alerts.is_empty() {
        return Err(WebError::NotFound);
    }
    let pts = charts::points(&revisions);
    let news2: Vec<_> = revisions
        .iter()
        .filter_map(|r| {
            let d: serde_json::Value = serde_json::from_str(r.details.as_deref()?).ok()?;
            let (total, band) = crate::store::news2_of(&d);
            Some((r.raised_at, total?, band, d["news2"]["complete"].as_bool()))
        })
        .collect();
    let missed: Vec<&AlertRow> = alerts
        .iter()
        .filter(|a| a.rule.starts_with("missing"))
        .collect();
    let device: Vec<&AlertRow> = alerts
        .iter()
        .filter(|a| a.kind == "technical" && !a.rule.starts_with("missing"))
        .collect();
    let body = html! {
        h1 { "Patient " (id) }
        section aria-labelledby="trends" {
            h2 id="trends" { "Vital signs, last 7 days" }
            p.muted { "Shading shows the NEWS2 score of each range: white 0, yellow 1, orange 2, red 3. Values are those the home sent with its alerts." }
            @for v in &charts::VITALS {
                (charts::chart(v, pts.get(v.key).map(Vec::as_slice).unwrap_or(&[]), from, now))
            }
        }
        section aria-labelledby="news2h" {
            h2 id="news2h" { "NEWS2 history" }
            table { caption { "NEWS2 scores received" }
                thead { tr { th scope="col" { "When (UTC)" } th scope="col" { "Score" } th scope="col" { "Band" } th scope="col" { "Complete" } } }
                tbody { @for (t, total, band, complete) in &news2 { tr {
                    td { (format_rfc3339_millis(*t)) } td { (total) } td { (band.as_deref().unwrap_or("")) }
                    td { @match complete { Some(true) => "yes", Some(false) => "no (parameters missing or stale)", None => "" } }
                } } }
            }
        }
        section aria-labelledby="missed" {
            h2 id="missed" { "Missed readings" }
            @if missed.is_empty() { p { "None reported." } }
            ul { @for a in &missed { li { (format_rfc3339_millis(a.raised_at)) ": " (a.message) " (" (a.state) ")" } } }
        }
        section aria-labelledby="devices" {
            h2 id="devices" { "Device health" }
            @if device.is_empty() { p { "No device problems reported." } }
            ul { @for a in &device { li { (a.device.as_deref().unwrap_or("hub")) ": " (a.message) " (" (a.state) ", " (time(now, a.raised_at)) ")" } } }
        }
        section aria-labelledby="alerts" {
            h2 id="alerts" { "Alerts" }
            table { caption { "All alerts for this patient, newest first" }
                thead { tr { th scope="col" { "Priority" } th scope="col" { "Trigger" } th scope="col" { "State" } th scope="col" { "Raised" } } }
                tbody { @for a in &alerts { tr {
                    td { (severity(&a.severity)) } td { a href=(format!("/alerts/{}", a.id)) { (a.rule) } " " (a.message) }
                    td { (a.state) } td { (time(now, a.raised_at)) }
                } } }
            }
            p { a href=(format!("/fhir/Patient/{id}/$everything")) { "FHIR R4 export (JSON)" } }
        }
    };
    Ok(html_page(
        &format!("Patient {id}"),
        Some(&user),
        "",
        body,
        None,
    ))
}

pub async fn homes(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Html<String>, WebError> {
    let now = state.clock.now_ms();
    let homes = state.store.homes().await?;
    let technical = state.store.open_technical(500).await?;
    let silent = homes.iter().filter(|h| h.silent == 1).count();
    let body = html! {
        h1 { "Homes" }
        p role="status" { (homes.len()) " homes, " span class=[(silent > 0).then_some("silent")] { (silent) " silent" } "." }
        table {
            caption { "Homes, silent first" }
            thead { tr {
                th scope="col" { "Home" } th scope="col" { "Status" } th scope="col" { "Last heard" }
                th scope="col" { "Last heartbeat (hub clock)" } th scope="col" { "Outbox backlog" }
                th scope="col" { "Oldest unacknowledged" } th scope="col" { "Open technical alerts" } th scope="col" { "Open clinical alerts" }
            } }
            tbody { @for h in &homes { tr data-home=(h.id) {
                td { (h.id) }
                td { @if h.silent == 1 { span.silent { "SILENT" } @if let Some(s) = h.silent_since { " since " (time(now, s)) } } @else { "OK" } }
                td { (time(now, h.last_seen_at)) }
                td { @if let Some(t) = h.last_heartbeat_at { (format_rfc3339_millis(t)) } @else { "never" } }
                td { @if let Some(d) = h.outbox_depth { (d) } @else { "—" } }
                td { @if let Some(s) = h.oldest_pending_s { (s) " s" } @else { "—" } }
                td { (h.open_technical) } td { (h.open_clinical) }
            } } }
        }
        table {
            caption { "Open technical alerts (low batteries, devices not seen, hub problems)" }
            thead { tr { th scope="col" { "Home" } th scope="col" { "Device" } th scope="col" { "Rule" } th scope="col" { "Message" } th scope="col" { "Raised" } } }
            tbody { @for a in &technical { tr {
                td { (a.home) } td { (a.device.as_deref().unwrap_or("—")) } td { code { (a.rule) } } td { (a.message) } td { (time(now, a.raised_at)) }
            } } }
        }
        p.muted { "Firmware versions and per-device battery levels are not in the homes' heartbeats yet; they appear here as technical alerts when a home raises them." }
    };
    Ok(html_page("Homes", Some(&user), "homes", body, None))
}
