-- The community hub's schema (PostgreSQL). Keep in step with migrations/sqlite: the queries are shared.
-- Times are UTC unix milliseconds; JSON is stored as text.

CREATE TABLE alerts (
    id TEXT PRIMARY KEY NOT NULL,
    rev BIGINT NOT NULL,
    home TEXT NOT NULL,
    patient TEXT NOT NULL,
    severity TEXT NOT NULL,
    severity_rank BIGINT NOT NULL,
    state TEXT NOT NULL,
    kind TEXT NOT NULL,
    rule TEXT NOT NULL,
    device TEXT,
    code TEXT,
    value DOUBLE PRECISION,
    unit TEXT,
    observed_at BIGINT,
    raised_at BIGINT NOT NULL,
    first_raised_at BIGINT NOT NULL,
    message TEXT NOT NULL,
    details TEXT,
    news2_total BIGINT,
    news2_band TEXT,
    is_open BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    assignee TEXT,
    acked_by TEXT,
    acked_at BIGINT,
    snoozed_until BIGINT,
    snooze_reason TEXT,
    outcome TEXT
);
CREATE INDEX alerts_queue ON alerts (is_open, severity_rank, first_raised_at);
CREATE INDEX alerts_patient ON alerts (patient, raised_at);
CREATE INDEX alerts_home ON alerts (home, is_open);

CREATE TABLE alert_revisions (
    alert_id TEXT NOT NULL,
    rev BIGINT NOT NULL,
    home TEXT NOT NULL,
    patient TEXT NOT NULL,
    state TEXT NOT NULL,
    severity TEXT NOT NULL,
    rule TEXT NOT NULL,
    code TEXT,
    value DOUBLE PRECISION,
    unit TEXT,
    device TEXT,
    observed_at BIGINT,
    raised_at BIGINT NOT NULL,
    details TEXT,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (alert_id, rev)
);
CREATE INDEX alert_revisions_patient ON alert_revisions (patient, raised_at);

CREATE TABLE homes (
    id TEXT PRIMARY KEY NOT NULL,
    first_seen_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    last_heartbeat_at BIGINT,
    outbox_depth BIGINT,
    oldest_pending_s BIGINT,
    silent BIGINT NOT NULL DEFAULT 0,
    silent_since BIGINT
);
CREATE INDEX homes_silence ON homes (silent, last_seen_at);

CREATE TABLE quarantine (
    id BIGSERIAL PRIMARY KEY,
    received_at BIGINT NOT NULL,
    topic TEXT NOT NULL,
    reason TEXT NOT NULL,
    payload TEXT NOT NULL
);

CREATE TABLE users (
    username TEXT PRIMARY KEY NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY NOT NULL,
    username TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE actions (
    action_id TEXT PRIMARY KEY NOT NULL,
    alert_id TEXT NOT NULL,
    home TEXT NOT NULL,
    action TEXT NOT NULL,
    by_user TEXT NOT NULL,
    at BIGINT NOT NULL,
    payload TEXT NOT NULL,
    -- Resent until the home's own revision shows it applied (acknowledge, resolve).
    last_sent_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 1,
    confirmed_at BIGINT
);
CREATE INDEX actions_unconfirmed ON actions (confirmed_at, last_sent_at);

CREATE TABLE audit (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    alert_id TEXT,
    home TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX audit_alert ON audit (alert_id);
