-- Clinical engine: incidents, check-ins, reminders.

-- A patient's concurrent clinical alerts share one incident (one item per patient in a nurse's queue).
ALTER TABLE alerts ADD COLUMN incident TEXT;
CREATE INDEX alerts_incident ON alerts (incident);

-- What a carer or the patient reported (consciousness, oxygen, RESTORE2 soft signs). The body is the message as
-- received and parsed (JSON); a resend with the same id is recognised by the primary key.
CREATE TABLE checkins (
    patient     TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    reporter    TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    PRIMARY KEY (patient, id)
);
CREATE INDEX checkins_at ON checkins (at);

-- Reminders sent to the home (missed scheduled readings), kept so a restart does not send them twice.
CREATE TABLE reminders (
    patient  TEXT    NOT NULL,
    schedule TEXT    NOT NULL,
    due_at   INTEGER NOT NULL,
    sent_at  INTEGER NOT NULL,
    PRIMARY KEY (patient, schedule, due_at)
);

-- Personal baselines sent by the community hub (agreed by a named clinician), applied over the configuration in
-- the order received; the body is the message in the wire format.
CREATE TABLE baselines (
    id          TEXT    PRIMARY KEY,
    patient     TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    body        TEXT    NOT NULL
);
